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
