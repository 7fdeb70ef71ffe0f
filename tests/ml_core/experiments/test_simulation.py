"""The simulator's parts: deterministic bucketing, the true value by Monte Carlo, clicks drawn from the pools; the
whole quick run (slow)."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ml_core.experiments.online_sim import Pools, bucket
from ml_core.experiments.simulate import expected_clicks
from ml_core.ranking import plackett_luce_propensities


def test_bucketing_is_stable_follows_the_shares_and_depends_on_the_experiment() -> None:
    shares = np.array([0.2, 0.8])
    arms = np.asarray([bucket("exp-1", m, shares) for m in range(20_000)])
    assert abs((arms == 0).mean() - 0.2) < 0.01
    assert [bucket("exp-1", m, shares) for m in range(50)] == arms[:50].tolist()
    other = np.asarray([bucket("exp-2", m, shares) for m in range(20_000)])
    assert 0.2 < (other != arms).mean() < 0.45  # independent splits disagree on 2 * 0.2 * 0.8 = 32%


def _exact(scores: np.ndarray, temperature: float, attract: np.ndarray, exam: np.ndarray) -> float:
    pool = np.flatnonzero(np.isfinite(scores))
    total = 0.0
    for slate in itertools.permutations(pool.tolist(), len(exam)):
        p = float(np.prod(plackett_luce_propensities(scores[None], np.asarray([slate]), temperature)))
        total += p * float(sum(e * attract[a] for e, a in zip(exam, slate, strict=True)))
    return total


def test_true_value_and_simulated_clicks_agree_with_exact_enumeration() -> None:
    scores = np.array([[0.9, -np.inf, 0.4, 0.1, 0.6, -np.inf]])
    attract = np.array([[0.5, 0.99, 0.2, 0.05, 0.3, 0.99]])  # the items outside the pool never count
    exam = np.array([1.0, 0.6, 0.3])
    exact = _exact(scores[0], 0.3, attract[0], exam)
    mc = expected_clicks(scores, 0.3, attract, exam, 20_000, np.random.default_rng(0))
    assert mc[0] == pytest.approx(exact, abs=0.01)
    pools = Pools(scores[None], attract)
    clicks = pools.clicks(0, np.zeros(40_000, np.int64), 0.3, exam, np.random.default_rng(1))
    assert clicks.mean() == pytest.approx(exact, abs=0.015)


@pytest.mark.slow
def test_the_quick_simulation_writes_its_section_and_plots(tmp_path: Path) -> None:
    from ml_core.experiments.simulate import run_simulate

    docs = tmp_path / "docs"
    args = argparse.Namespace(out=str(tmp_path / "sim"), docs=str(docs), seed=0, quick=True)
    assert run_simulate(args) == 0
    report = json.loads((tmp_path / "sim" / "report.json").read_text())
    assert report["ope"]["propensity_check"] < 1e-6  # policy.py reproduces the engine's propensities
    assert set(report["ope"]["summary"]) == {"IPS", "SNIPS", "DM", "DR", "DR-clip", "switch-DR"}
    text = (docs / "EXPERIMENTS.md").read_text()
    assert "<!-- experiments:simulation -->" in text and "## 3. Thompson" in text
    assert all((docs / "img" / f"experiments_{n}.png").exists() for n in ("ope", "ab", "regret"))
