"""Tier 2's user-state cache: a repeated request reuses the models' user-side work and scores identically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml_core import serving_engine
from ml_core.serving import Tier, load_engine
from ml_core.user_states import UserStateCache, request_key
from tests.ml_core.serving_bundle import N_PER_GENRE

SCI_FI = list(range(101, 101 + N_PER_GENRE))


@pytest.fixture(scope="module")
def tier2(serving_bundle: Path):  # noqa: ANN201
    if not json.loads((serving_bundle / "ensemble.json").read_text()).get("onnx_models"):
        pytest.skip("no ONNX exports in the bundle")
    return load_engine(serving_bundle, Tier.ONNX)


def _scores(engine, history, **ctx):  # noqa: ANN001, ANN202
    b = engine.bundle
    hist = np.asarray([b.index[m] for m in history], np.int64)
    return serving_engine._model_scores(b, hist, np.arange(len(b.movie_ids)), ctx)


def test_a_repeated_request_hits_and_scores_exactly_as_the_first(tier2) -> None:  # noqa: ANN001
    cache = tier2.bundle.user_states
    cache.clear()
    first = _scores(tier2, SCI_FI[:4])
    after_first = cache.stats()
    again = _scores(tier2, SCI_FI[:4])
    assert after_first["misses"] == 1 and after_first["entries"] == 1
    assert cache.stats()["hits"] == after_first["hits"] + 1
    np.testing.assert_array_equal(first, again)
    cache.clear()
    np.testing.assert_array_equal(_scores(tier2, SCI_FI[:4]), first)  # recomputed from scratch: the same


def test_different_inputs_do_not_share_a_state(tier2) -> None:  # noqa: ANN001
    cache = tier2.bundle.user_states
    cache.clear()
    base = _scores(tier2, SCI_FI[:4])
    longer = _scores(tier2, SCI_FI[:5])
    timed = _scores(tier2, SCI_FI[:4], times=np.arange(4, dtype=np.float64) * 86400.0, now=4 * 86400.0)
    assert cache.stats()["misses"] == 3 and cache.stats()["entries"] == 3
    assert not np.array_equal(base, longer, equal_nan=True)
    assert timed.shape == base.shape  # (the tiny bundle has no clock-aware model; the key still tells them apart)


def test_only_scorers_that_split_their_work_are_cached(tier2) -> None:  # noqa: ANN001
    split = {n for n, s in tier2.bundle.scorers.items() if hasattr(s, "user_state")}
    assert split and split == set(tier2.bundle.scorers) - {"lightgcn", "kan", "ease"}
    for name in split:  # score() is user_state() then score_state()
        s, hist = tier2.bundle.scorers[name], np.asarray([0, 3, 5])
        np.testing.assert_array_equal(s.score(hist, np.arange(20)), s.score_state(s.user_state(hist), np.arange(20)))


def test_request_keys_cover_every_model_input() -> None:
    h = np.asarray([1, 2, 3])
    keys = {request_key(h, {}), request_key(h[:2], {}), request_key(h, {"times": np.asarray([1.0, 2.0, 3.0])}),
            request_key(h, {"now": 5.0}), request_key(h, {"user": 7})}
    assert len(keys) == 5 and request_key(h, {}) == request_key(h.copy(), {})


def test_the_cache_stays_within_its_byte_budget_least_recent_out() -> None:
    cache = UserStateCache(budget_bytes=3 * (4000 + 256))
    for i in range(5):
        cache.put(bytes([i]), {"m": np.zeros(1000, np.float32)})
    assert cache.stats()["entries"] == 3 and cache.stats()["bytes"] <= cache.budget_bytes
    assert cache.get(bytes([0])) == {} and "m" in cache.get(bytes([4]))
    cache.put(b"huge", {"m": np.zeros(10_000, np.float32)})  # larger than the whole budget: not stored
    assert cache.get(b"huge") == {}


def test_a_returning_request_reuses_its_ranked_pool(tier2) -> None:  # noqa: ANN001
    cache = tier2.bundle.user_states
    cache.clear()
    first = tier2.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, temperature=0.0, explain=True)
    misses = cache.stats()["misses"]
    again = tier2.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, temperature=0.0, explain=True)
    assert cache.stats()["misses"] == misses and cache.stats()["hits"] >= 1
    assert [i["movie_id"] for i in again.items] == [i["movie_id"] for i in first.items]
    assert again.items[0]["explanation"] == first.items[0]["explanation"]
    sampled = {tuple(i["movie_id"] for i in tier2.recommend_user(SCI_FI[:4], k=5, seed=s).items) for s in range(8)}
    assert len(sampled) > 1  # the slate is still drawn per request from the cached pool


def test_the_pool_key_follows_everything_the_pool_depends_on(tier2) -> None:  # noqa: ANN001
    import torch

    b = tier2.bundle
    hist, rates, ctx, filters = np.asarray([3, 4, 5]), np.asarray([5.0, 4.0, 3.0], np.float32), {"now": None}, {
        "genre": None, "year": None, "year_min": None, "year_max": None}

    def key(**changes):  # noqa: ANN003, ANN202
        args = {"hist": hist, "rates": rates, "ctx": ctx, "k": 10, "n_candidates": 100, "filters": filters, **changes}
        return serving_engine._pool_key(b, args["hist"], args["rates"], args["ctx"], args["k"], args["n_candidates"],
                                        args["filters"])

    base = key()
    assert key() == base
    assert len({base, key(hist=hist[:2]), key(rates=rates * 0 + 1), key(k=5), key(n_candidates=500),
                key(filters={**filters, "genre": "Drama"}), key(ctx={"now": 5.0})}) == 7
    old_weights, old_version = b.weights, b.weights_version
    try:
        b.set_weights(np.full_like(old_weights, 1.0 / len(old_weights)), "even")
        assert key() != base
    finally:
        b.set_weights(old_weights, old_version)
    assert key() == base
    b.refresh_popularity()  # online counters moved the popular list
    assert key() != base
    after_popularity = key()
    ranker = b.ranker

    class Ranker:
        net = torch.nn.Linear(2, 1)

    b.ranker = Ranker()
    try:
        before_step = key()
        with torch.no_grad():
            Ranker.net.weight.add_(0.1)  # an online SGD step updates the weights in place
        assert key() != before_step and key() != after_popularity
    finally:
        b.ranker = ranker


def test_item_lists_reuse_their_pool_and_never_share_a_users(tier2) -> None:  # noqa: ANN001
    cache = tier2.bundle.user_states
    cache.clear()
    movie = SCI_FI[0]
    first = tier2.recommend_item(movie, k=5)
    misses = cache.stats()["misses"]
    again = tier2.recommend_item(movie, k=5)
    assert cache.stats()["misses"] == misses
    assert [i["movie_id"] for i in again.items] == [i["movie_id"] for i in first.items]
    user = tier2.recommend_user([movie], k=5, temperature=0.0)  # a one-movie history: a user pool, not the item's
    assert cache.stats()["misses"] > misses and movie not in {i["movie_id"] for i in user.items}
