"""Per-request policy overrides (an experiment arm's): blend weights, lite scoring, ε-greedy slates, MMR λ.

Each changes that request only; the engine's own blend, cached pools and propensities stay right."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ml_core.serving import Tier, load_engine

HISTORY = [101, 102, 103]


@pytest.fixture
def engine(serving_bundle: Path, tmp_path: Path):  # noqa: ANN201
    shutil.copytree(serving_bundle, tmp_path / "serving")
    return load_engine(tmp_path / "serving", Tier.TORCH)


def _ranked(result) -> list[tuple[int, float]]:  # noqa: ANN001
    return [(i["movie_id"], i["score"]) for i in result.items]


def test_request_weights_rank_as_that_blend_would_and_leave_the_engines_blend_alone(engine) -> None:  # noqa: ANN001
    before = engine.weights
    default = engine.recommend_user(HISTORY, k=6, temperature=0.0)
    override = engine.recommend_user(HISTORY, k=6, temperature=0.0, weights={"lightgcn": 2.0, "nope": 5.0})
    assert engine.weights == before and _ranked(engine.recommend_user(HISTORY, k=6, temperature=0.0)) == _ranked(default)
    engine.set_weights({"lightgcn": 1.0}, "lightgcn-only")
    assert _ranked(engine.recommend_user(HISTORY, k=6, temperature=0.0)) == _ranked(override) != _ranked(default)


def test_weights_naming_no_loaded_model_serve_the_bundles_blend(engine) -> None:  # noqa: ANN001
    default = engine.recommend_user(HISTORY, k=6, temperature=0.0)
    assert _ranked(engine.recommend_user(HISTORY, k=6, temperature=0.0, weights={"kan": 1.0})) == _ranked(default)


def test_lite_scoring_skips_the_ensemble_for_that_request(engine) -> None:  # noqa: ANN001
    lite = engine.recommend_user(HISTORY, k=6, temperature=0.0, lite=True, explain=True)
    full = engine.recommend_user(HISTORY, k=6, temperature=0.0, explain=True)
    assert all(not i["explanation"]["contributions"] for i in lite.items)
    assert all(i["explanation"]["contributions"] for i in full.items)
    assert _ranked(lite) != _ranked(full) and lite.disagreement is None and not lite.gated


def test_epsilon_greedy_slates_log_their_own_propensities(engine) -> None:  # noqa: ANN001
    greedy = engine.recommend_user(HISTORY, k=5, epsilon=0.0)
    assert greedy.policy == {"name": "epsilon-greedy", "epsilon": 0.0}
    assert [i["propensity"] for i in greedy.items] == [1.0] * 5
    assert [i["movie_id"] for i in greedy.items] == [i["movie_id"] for i in
                                                    engine.recommend_user(HISTORY, k=5, temperature=0.0).items]
    pool = 10  # MMR keeps 2k candidates for the slate
    for seed in range(20):
        items = engine.recommend_user(HISTORY, k=5, epsilon=0.5, seed=seed).items
        for slot, item in enumerate(items):
            left = pool - slot  # the slot drew the best remaining (prob 1 - eps + eps/left) or another (eps/left)
            assert item["propensity"] in (pytest.approx(0.5 + 0.5 / left, abs=1e-6), pytest.approx(0.5 / left, abs=1e-6))


def test_mmr_lambda_one_keeps_relevance_order(engine) -> None:  # noqa: ANN001
    scores = [i["score"] for i in engine.recommend_user(HISTORY, k=8, temperature=0.0, mmr_lambda=1.0).items]
    assert scores == sorted(scores, reverse=True)
    diverse = [i["score"] for i in engine.recommend_user(HISTORY, k=8, temperature=0.0, mmr_lambda=0.3).items]
    assert diverse != scores and np.isclose(diverse[0], scores[0])
