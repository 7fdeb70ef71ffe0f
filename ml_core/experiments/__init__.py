"""Experiments in plain Python: online-test statistics (:mod:`.stats`), off-policy estimates from impression logs
(:mod:`.ope`), and the simulator that checks both against a known truth (:mod:`.simulate`).

Import the submodule you need (``from ml_core.experiments.stats import msprt``); nothing heavy loads here.
"""
