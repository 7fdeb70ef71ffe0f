"""The demographic fairness report: per member group (age band, gender, occupation where the data has them)
NDCG@10 and HR@10 with intervals, exposure Gini and genre/popularity KLs, before and after the re-ranker.

``python -m ml_core fairness --dataset ml-100k`` writes docs/FAIRNESS.md; the apps reach
:func:`fairness_report` through ``ml_core.builds`` (the nightly report on the site's own ratings).
"""

from .card import write_fairness_card
from .report import NoGroupsError, fairness_report
from .scorers import EASE_MAX_ITEMS, MODEL_CHOICES, ScorerUnavailable

__all__ = ["EASE_MAX_ITEMS", "MODEL_CHOICES", "NoGroupsError", "ScorerUnavailable", "fairness_report", "write_fairness_card"]
