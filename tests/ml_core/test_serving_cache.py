"""Tier 2's user-state and ranked-pool cache (ml_core/serving/cache.py): a repeated request reuses the models'
user-side work and scores identically. White-box where it must be: the pipeline's steps on a loaded bundle."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ml_core.retrieval import Candidates
from ml_core.serving import Tier, load_engine, pipeline
from ml_core.serving.bundle import Bundle
from ml_core.serving.cache import PoolBase, UserStateCache, pack_pool, request_key, unpack_pool
from tests.ml_core.serving_bundle import N_PER_GENRE

SCI_FI = list(range(101, 101 + N_PER_GENRE))


@pytest.fixture(scope="module")
def tier2(serving_bundle: Path):  # noqa: ANN201
    if not json.loads((serving_bundle / "ensemble.json").read_text()).get("onnx_models"):
        pytest.skip("no ONNX exports in the bundle")
    return load_engine(serving_bundle, Tier.ONNX)


@pytest.fixture(scope="module")
def bundle2(tier2, serving_bundle: Path) -> Bundle:  # noqa: ANN001
    return Bundle.load(serving_bundle, int(Tier.ONNX))


def _scores(b: Bundle, history, **ctx):  # noqa: ANN001, ANN202
    hist = np.asarray([b.index[m] for m in history], np.int64)
    return pipeline._model_scores(b, hist, np.arange(len(b.movie_ids)), ctx)


def _misses(engine) -> int:  # noqa: ANN001
    return engine.stats()["cache"]["misses"]


def test_a_repeated_request_hits_and_scores_exactly_as_the_first(bundle2) -> None:  # noqa: ANN001
    cache = bundle2.user_states
    cache.clear()
    first = _scores(bundle2, SCI_FI[:4])
    after_first = cache.stats()
    again = _scores(bundle2, SCI_FI[:4])
    assert after_first["misses"] == 1 and after_first["entries"] == 1
    assert cache.stats()["hits"] == after_first["hits"] + 1
    np.testing.assert_array_equal(first, again)
    cache.clear()
    np.testing.assert_array_equal(_scores(bundle2, SCI_FI[:4]), first)  # recomputed from scratch: the same


def test_different_inputs_do_not_share_a_state(bundle2) -> None:  # noqa: ANN001
    cache = bundle2.user_states
    cache.clear()
    base = _scores(bundle2, SCI_FI[:4])
    longer = _scores(bundle2, SCI_FI[:5])
    timed = _scores(bundle2, SCI_FI[:4], times=np.arange(4, dtype=np.float64) * 86400.0, now=4 * 86400.0)
    assert cache.stats()["misses"] == 3 and cache.stats()["entries"] == 3
    assert not np.array_equal(base, longer, equal_nan=True)
    assert timed.shape == base.shape  # (the tiny bundle has no clock-aware model; the key still tells them apart)


def test_only_scorers_that_split_their_work_are_cached(bundle2) -> None:  # noqa: ANN001
    split = bundle2.state_scorers
    assert split and split == set(bundle2.scorers) - {"lightgcn", "kan", "ease"}
    for name in split:  # score() is user_state() then score_state()
        s, hist = bundle2.scorers[name], np.asarray([0, 3, 5])
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
    tier2.clear_cache()
    first = tier2.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, temperature=0.0, explain=True)
    misses = _misses(tier2)
    again = tier2.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, temperature=0.0, explain=True)
    assert _misses(tier2) == misses and tier2.stats()["cache"]["hits"] >= 1
    assert [i["movie_id"] for i in again.items] == [i["movie_id"] for i in first.items]
    assert again.items[0]["explanation"] == first.items[0]["explanation"]
    sampled = {tuple(i["movie_id"] for i in tier2.recommend_user(SCI_FI[:4], k=5, seed=s).items) for s in range(8)}
    assert len(sampled) > 1  # the slate is still drawn per request from the cached pool


def test_the_pool_keys_follow_everything_the_pool_depends_on(bundle2) -> None:  # noqa: ANN001
    b = bundle2
    hist, rates, ctx, filters = np.asarray([3, 4, 5]), np.asarray([5.0, 4.0, 3.0], np.float32), {"now": None}, {
        "genre": None, "year": None, "year_min": None, "year_max": None}

    def keys(**changes):  # noqa: ANN003, ANN202
        args = {"hist": hist, "rates": rates, "ctx": ctx, "k": 10, "n_candidates": 100, "filters": filters, **changes}
        return pipeline._pool_keys(b, args["hist"], args["rates"], args["ctx"], args["k"], args["n_candidates"],
                                   args["filters"])

    base, pool = keys()
    assert keys() == (base, pool)
    drama = {**filters, "genre": "Drama"}
    variants = [keys(hist=hist[:2]), keys(rates=rates * 0 + 1), keys(n_candidates=500), keys(filters=drama),
                keys(ctx={"now": 5.0})]
    assert len({base, *(v[0] for v in variants)}) == 6 and len({pool, *(v[1] for v in variants)}) == 6
    # the list length shapes the pool only through a filter's top-up: unfiltered lists of any length share one
    assert keys(k=5) == (base, pool) and keys(k=5, filters=drama) != keys(filters=drama)
    old_weights, old_version = b.weights, b.weights_version
    try:
        b.set_weights(np.full_like(old_weights, 1.0 / len(old_weights)), "even")
        assert keys() == (base, keys()[1]) and keys()[1] != pool  # blend weights: applied on top of the base
    finally:
        b.set_weights(old_weights, old_version)
    assert keys() == (base, pool)
    filtered = keys(filters=drama)
    old_counts = b.popularity.copy()
    b.set_counts(old_counts + 1)  # the counters moved, the popular list's order did not
    assert keys()[0] == base and keys()[1] != pool
    assert keys(filters=drama)[0] != filtered[0]  # a filter's top-up reads the whole order
    moved = old_counts.copy()
    moved[b.popular_order[-1]] = moved.max() + 100  # a new most popular movie: retrieval's popular source moved
    b.set_counts(moved)
    assert keys()[0] != base
    after_popularity = keys()
    b.online_version += 1  # an online state that changed nothing served: every pool stays valid
    assert keys() == after_popularity
    import torch

    ranker, b.ranker = b.ranker, SimpleNamespace(net=torch.nn.Linear(3, 2))  # an online ranker's net
    try:
        served = {k: v.detach().numpy().copy() for k, v in b.ranker.net.state_dict().items()}
        b.set_ranker_weights(served)
        with_ranker = keys()
        assert with_ranker[0] == after_popularity[0] and with_ranker[1] != after_popularity[1]
        b.set_ranker_weights({k: v * 1.01 for k, v in served.items()})  # an online state with new ranker weights
        assert keys()[0] == with_ranker[0] and keys()[1] != with_ranker[1]
        b.set_ranker_weights(served)
        assert keys() == with_ranker
    finally:
        b.ranker, b.ranker_digest = ranker, b""
        b.set_counts(old_counts)


def test_new_ranker_weights_rescore_only_the_rankers_row(bundle2) -> None:  # noqa: ANN001
    b = bundle2
    hist = np.asarray([b.index[m] for m in SCI_FI[:4]], np.int64)
    filters = {"genre": None, "year": None, "year_min": None, "year_max": None}
    name = next(n for n in b.model_names if n not in b.state_scorers)  # the KAN ranker is scored whole

    class Ranker:  # an online ranker whose served weights scale its scores
        def __init__(self, scale: float) -> None:
            self.scale = scale

        def score(self, history, candidates, **ctx):  # noqa: ANN001, ANN003, ANN201
            return np.asarray(candidates, np.float32) * self.scale

    real, saved = b.scorers[name], (b.ranker, b.ranker_name, b.ranker_digest)
    try:
        b.scorers[name], b.ranker, b.ranker_name = Ranker(1.0), None, name
        b.ranker = b.scorers[name]
        base = pipeline._user_base(b, hist, hist, hist[-3:], {}, 10, 100, filters)
        b.ranker.scale, b.ranker_digest = -2.0, b"stepped"  # what set_ranker_weights does to a real ranker
        finished = pipeline._finish_pool(b, base, hist, {}, None, gate=True)
        fresh = pipeline._finish_pool(b, pipeline._user_base(b, hist, hist, hist[-3:], {}, 10, 100, filters), hist, {},
                                      None, gate=True)
        np.testing.assert_array_equal(finished[2], fresh[2])
        np.testing.assert_array_equal(finished[1], fresh[1])
        m = b.model_names.index(name)
        again = pipeline._user_base(b, hist, hist, hist[-3:], {}, 10, 100, filters).raw
        np.testing.assert_array_equal(np.delete(base.raw, m, 0), np.delete(again, m, 0))  # the others: as stored
        assert not np.array_equal(base.raw[m], again[m])
    finally:
        b.scorers[name] = real
        b.ranker, b.ranker_name, b.ranker_digest = saved


def test_item_lists_reuse_their_pool_and_never_share_a_users(tier2) -> None:  # noqa: ANN001
    tier2.clear_cache()
    movie = SCI_FI[0]
    first = tier2.recommend_item(movie, k=5)
    misses = _misses(tier2)
    again = tier2.recommend_item(movie, k=5)
    assert _misses(tier2) == misses
    assert [i["movie_id"] for i in again.items] == [i["movie_id"] for i in first.items]
    user = tier2.recommend_user([movie], k=5, temperature=0.0)  # a one-movie history: a user pool, not the item's
    assert _misses(tier2) > misses and movie not in {i["movie_id"] for i in user.items}


class DictPools:
    """A PoolStore in a dict (what Redis is to the site's workers), counting reads and writes."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.reads = self.writes = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.writes += 1
        self.data[key] = value


def test_a_packed_pool_reads_back_exactly() -> None:
    cands = Candidates(items=np.asarray([7, 3, 9], np.int64), lists={"embedding": np.asarray([7, 3], np.int64),
                                                                    "popular": np.zeros(0, np.int64)},
                       extra={9: ["popular"]})
    rng = np.random.default_rng(0)
    base = PoolBase(cands, rng.random((4, 3), dtype=np.float32), rng.random((2, 3), dtype=np.float32), b"\x01\x02")
    back = unpack_pool(pack_pool(base))
    assert back.cands.items.tolist() == [7, 3, 9] and back.cands.extra == {9: ["popular"]}
    assert {k: v.tolist() for k, v in back.cands.lists.items()} == {"embedding": [7, 3], "popular": []}
    np.testing.assert_array_equal(back.raw, base.raw)
    np.testing.assert_array_equal(back.lite, base.lite)
    assert back.ranker_digest == b"\x01\x02"
    lite = unpack_pool(pack_pool(PoolBase(cands, None, base.lite)))  # Tier 3 or lite scoring: no model scores
    assert lite.raw is None and lite.ranker_digest == b""
    with pytest.raises(ValueError, match="not a packed ranked pool"):
        unpack_pool(b"\x05\x00\x00\x00{oops")


def test_workers_sharing_a_store_compute_a_pool_once_and_serve_it_alike(serving_bundle: Path, tier2) -> None:  # noqa: ANN001
    store = DictPools()
    first, second = load_engine(serving_bundle, Tier.ONNX), load_engine(serving_bundle, Tier.ONNX)
    first.share_pools(store)
    second.share_pools(store)
    ask = {"ratings": [5, 4, 5, 4], "k": 5, "seed": 3, "explain": True}
    served = first.recommend_user(SCI_FI[:4], **ask)
    assert store.writes == 1  # computed by the first worker and shared
    again = second.recommend_user(SCI_FI[:4], **ask)
    assert store.writes == 1 and store.reads == 2  # the second read it instead of running the models
    assert second.stats()["cache"]["entries"] >= 1  # and keeps it for its own next request
    assert [(i["movie_id"], i["score"], i["propensity"]) for i in again.items] == \
        [(i["movie_id"], i["score"], i["propensity"]) for i in served.items]
    assert again.items[0]["explanation"] == served.items[0]["explanation"]
    # a portal row of another length shares the API list's pool; a filtered list does not
    second.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=12)
    assert store.writes == 1
    second.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, genre="Drama")
    assert store.writes == 2


def test_each_worker_finishes_a_shared_pool_with_its_own_live_state(serving_bundle: Path, tier2) -> None:  # noqa: ANN001
    store = DictPools()
    first, second = load_engine(serving_bundle, Tier.ONNX), load_engine(serving_bundle, Tier.ONNX)
    first.share_pools(store)
    second.share_pools(store)
    first.recommend_user(SCI_FI[:4], k=5, seed=1)
    even = {name: 1.0 for name in second.weights}
    second.set_weights(even, "even")  # new blend weights on one worker: the shared part still serves
    shared = second.recommend_user(SCI_FI[:4], k=5, seed=1)
    assert store.writes == 1 and store.reads == 2
    alone = load_engine(serving_bundle, Tier.ONNX)  # the same weights, nothing shared: the same list
    alone.set_weights(even, "even")
    assert [(i["movie_id"], i["score"]) for i in alone.recommend_user(SCI_FI[:4], k=5, seed=1).items] == \
        [(i["movie_id"], i["score"]) for i in shared.items]
    tier3 = load_engine(serving_bundle, Tier.LITE)  # another tier: its own pools
    tier3.share_pools(store)
    tier3.recommend_user(SCI_FI[:4], k=5, seed=1)
    assert len(store.data) == 2
    expected = [i["movie_id"] for i in first.recommend_user(SCI_FI[:4], k=5, seed=1).items]
    for key in store.data:  # a damaged record is recomputed, not served
        store.data[key] = b"\x05\x00\x00\x00garbage"
    fresh = load_engine(serving_bundle, Tier.ONNX)
    fresh.share_pools(store)
    assert [i["movie_id"] for i in fresh.recommend_user(SCI_FI[:4], k=5, seed=1).items] == expected
    assert store.writes == 3


def test_a_filter_that_nothing_passes_answers_an_empty_list(tier2) -> None:  # noqa: ANN001
    assert tier2.recommend_item(SCI_FI[0], k=5, genre="no such genre").items == []
    assert tier2.recommend_user(SCI_FI[:4], k=5, genre="no such genre").items == []
