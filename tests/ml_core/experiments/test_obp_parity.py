"""APEX's single-action IPS / SNIPS / DR equal the Open Bandit Pipeline's on the same arrays (obp runs in the venv
``benchmarks/ope_obp.py`` creates; skipped when that venv is absent — the hand-computed cases in test_ope.py always
run)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.ope_obp import TOLERANCE, apex_estimates, run_obp, venv_python

OBP = venv_python()
pytestmark = pytest.mark.skipif(OBP is None, reason="no obp venv (python benchmarks/ope_obp.py creates var/obp-venv)")


def _bandit(seed: int, n: int = 2000, n_actions: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n_actions))
    mu = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    action = np.asarray([rng.choice(n_actions, p=p) for p in mu])
    pi = np.exp(-logits * 0.5) / np.exp(-logits * 0.5).sum(1, keepdims=True)  # a rather different policy
    truth = 1 / (1 + np.exp(-logits))
    reward = (rng.random(n) < truth[np.arange(n), action]).astype(float)
    q = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1)  # a noisy reward model
    return {"reward": reward, "action": action, "pscore": mu[np.arange(n), action], "action_dist": pi, "q": q}


def test_apex_and_obp_give_the_same_ips_snips_and_dr() -> None:
    assert OBP is not None
    cases = {f"seed{s}": _bandit(s) for s in (0, 1)}
    theirs = run_obp(OBP, cases)
    for case, arrays in cases.items():
        ours = apex_estimates(arrays)
        for name in ("IPS", "SNIPS", "DR"):
            assert ours[name] == pytest.approx(theirs[case][name], rel=TOLERANCE, abs=1e-12), (case, name)
