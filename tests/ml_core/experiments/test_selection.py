"""Weights re-selected by DR on served lists: kept with too few lists, moved toward the model the clicks favour."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ml_core.experiments.selection import LoggedList, select_weights_from_logs
from tests.ml_core.serving_bundle import GENRES, N_PER_GENRE, tiny_interactions, tiny_metadata


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import torch

    from ml_core.serving import Tier, load_engine
    from ml_core.serving_build import build_serving

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("selection")
    build_serving(tiny_interactions(), tiny_metadata(), root / "serving", names=["ease", "popularity"],
                  model_root=root / "models", quick=True, onnx=False, temperature=0.5)
    return load_engine(root / "serving", Tier.TORCH)


def _served_lists(engine: Any, n_requests: int, seed: int = 0) -> list[LoggedList]:
    """Members of each genre cluster ask for lists; they click their own cluster's movies (position-based)."""
    rng = np.random.default_rng(seed)
    exam = 1 / np.log2(np.arange(10) + 2)
    out = []
    for r in range(n_requests):
        g = r % len(GENRES)
        history = [101 + g * N_PER_GENRE + j for j in rng.choice(N_PER_GENRE, 3, replace=False)]
        result = engine.recommend_user(history, temperature=0.5, seed=r)
        ids = [it["movie_id"] for it in result.items]
        own = np.asarray([(m - 101) // N_PER_GENRE == g for m in ids])
        rewards = (rng.random(len(ids)) < exam[: len(ids)] * np.where(own, 0.9, 0.05)).astype(float)
        out.append(LoggedList(history, ids, [it["propensity"] for it in result.items], rewards.tolist(), 0.5))
    return out


def test_too_few_lists_keep_the_served_weights_and_say_why(engine: Any) -> None:
    choice = select_weights_from_logs(engine, _served_lists(engine, 20), min_lists=100)
    assert not choice.changed and choice.weights == engine.weights
    assert choice.reason["decision"] == "kept" and "fewer than 100" in choice.reason["why"]


def test_popularity_heavy_weights_move_toward_the_model_that_matches_the_clicks(engine: Any) -> None:
    engine.set_weights({"ease": 0.02, "popularity": 0.98}, "test-popular")
    lists = _served_lists(engine, 600)
    choice = select_weights_from_logs(engine, lists, min_lists=500, n_candidates=20, seed=1)
    reason = choice.reason
    assert reason["n_lists"] == 600 and reason["candidates"] == 21
    assert reason["best"]["dr"] >= reason["served"]["dr"]
    assert choice.changed and reason["decision"] == "changed"
    assert choice.weights["ease"] > 0.3
    assert sum(choice.weights.values()) == pytest.approx(1.0, abs=1e-5)


def test_lists_without_a_stochastic_policy_are_not_used(engine: Any) -> None:
    lists = _served_lists(engine, 5)
    greedy = [LoggedList(x.history, x.movie_ids, x.propensities, x.rewards, 0.0) for x in lists]
    choice = select_weights_from_logs(engine, greedy, min_lists=1)
    assert choice.reason["n_usable"] == 0 and not choice.changed


def test_the_policy_code_reproduces_the_engines_logged_propensities(engine: Any) -> None:
    from ml_core.ranking import plackett_luce_propensities
    from ml_core.serving.policy import policy_scores, request_context, slate_positions

    for r, history in enumerate(([101, 102, 103], [111, 115], [121, 131, 122, 139])):
        ratings = [5.0, 2.0, 4.0, 5.0][: len(history)]
        result = engine.recommend_user(history, ratings=ratings, temperature=0.5, seed=r)
        ctx = request_context(engine, history, ratings=ratings)
        assert ctx is not None
        shown = slate_positions(engine, ctx, [it["movie_id"] for it in result.items], 10)
        assert (shown >= 0).all()
        ours = plackett_luce_propensities(policy_scores(engine, ctx, None)[None], shown[None], 0.5)[0]
        assert ours == pytest.approx([it["propensity"] for it in result.items], abs=1e-6)


def test_candidate_arms_are_estimated_from_the_logs_before_launch(engine: Any) -> None:
    """Issue 21: every estimator for a candidate weight set or temperature, on lists another policy served."""
    from ml_core.experiments.selection import estimate_policies_from_logs

    engine.set_weights({"ease": 0.02, "popularity": 0.98}, "test-popular")
    lists = _served_lists(engine, 400)
    found = estimate_policies_from_logs(engine, lists, [(None, None), ({"ease": 1.0}, None), (None, 2.0)],
                                        min_lists=100, seed=1)
    assert found["n_usable"] == 400 and len(found["estimates"]) == 3
    served, ease_only, hot = found["estimates"]
    assert set(served) == {"IPS", "SNIPS", "DM", "DR", "DR-clip", "switch-DR"}
    for est in (served, ease_only, hot):
        for e in est.values():
            assert e["low"] <= e["value"] <= e["high"]
    clicks = np.mean([sum(x.rewards) for x in lists])
    assert served["IPS"]["value"] == pytest.approx(clicks, rel=0.02)  # the logging policy: weights 1 everywhere
    assert ease_only["DR"]["value"] > served["DR"]["value"]  # the clicks follow the genre clusters EASE models
    assert hot["DR"]["value"] < ease_only["DR"]["value"]  # sampling near-uniformly from the pool clicks less
    too_few = estimate_policies_from_logs(engine, lists[:10], [(None, None)], min_lists=100)
    assert too_few["estimates"] == [] and "fewer than 100" in too_few["why"]
