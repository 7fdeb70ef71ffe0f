"""The KAN ranker's features at catalogue size: sparse histories, top-k neighbourhoods, EASE's head."""

import dataclasses

import numpy as np
import pytest

from ml_core.data import interactions_from_arrays
from ml_core.interface import FitOptions, UserContext
from ml_core.models.kan import KANConfig, KANRanker
from ml_core.models.kan_features import FEATURES, FeatureBuilder

N_ITEMS = 60
KNN = [FEATURES.index("knn_recent"), FEATURES.index("knn_last")]
EASE_COLS = [FEATURES.index("ease"), FEATURES.index("ease_z")]


@pytest.fixture(scope="module")
def log():
    rng = np.random.default_rng(3)
    users, items, times = [], [], []
    for u in range(150):
        taste = rng.integers(0, 3)  # three taste groups, so neighbourhoods mean something
        seen = rng.choice(np.arange(taste * 20, taste * 20 + 20), size=rng.integers(4, 15), replace=False)
        seen = np.concatenate([seen, rng.choice(N_ITEMS, size=2, replace=False)])
        users += [u] * len(seen)
        items += seen.tolist()
        times += (1_000_000 + 86_400 * np.arange(len(seen)) + 3_600 * u).tolist()
    data = interactions_from_arrays(np.array(users), np.array(items), np.array(times), name="kan-size")
    data.item_genres = {i: ["A" if i < 30 else "B"] for i in range(data.n_items)}
    data.item_years = {i: 1980 + i % 30 for i in range(data.n_items)}
    return data


@pytest.fixture(scope="module")
def contexts(log):
    order = log.chronological_order()
    bounds = log.user_bounds(order)
    return [UserContext(history=log.items[order[bounds[u]:bounds[u + 1]]][:-1], now=2_000_000.0) for u in range(12)]


@pytest.fixture(scope="module")
def dense(log):
    return FeatureBuilder(ease_reg=5.0, svd_factors=4).fit(log)


@pytest.fixture(scope="module")
def sparse_full(log):
    """Past the dense limit, keeping every neighbour: the cosine is the dense one, held as a CSR."""
    return FeatureBuilder(ease_reg=5.0, svd_factors=4, dense_items=20, neighbours=log.n_items).fit(log)


def test_a_large_catalogue_holds_no_item_by_item_array(log):
    builder = FeatureBuilder(ease_reg=5.0, svd_factors=4, dense_items=20, neighbours=5).fit(log)
    n = log.n_items
    assert not builder.dense and "cosine" not in builder.arrays
    assert all(v.size < n * n for v in builder.arrays.values()), {k: v.shape for k, v in builder.arrays.items()}
    row_counts = np.diff(builder.arrays["cos_indptr"])
    assert row_counts.max() <= 5  # each item keeps its five nearest neighbours
    assert builder.arrays["ease_weights"].shape == (20, 20)  # EASE solved densely over its 20-item head only


def test_sparse_neighbourhoods_keeping_every_neighbour_give_the_dense_features(dense, sparse_full, contexts):
    assert dense.dense and not sparse_full.dense
    a, b = dense.features(contexts), sparse_full.features(contexts)
    np.testing.assert_allclose(b[..., KNN], a[..., KNN], atol=1e-5)
    others = [i for i in range(len(FEATURES)) if i not in KNN + EASE_COLS]  # EASE differs: head + remainder
    np.testing.assert_allclose(b[..., others], a[..., others], atol=1e-5)


@pytest.mark.parametrize("which", ["dense", "sparse"])
def test_candidate_features_equal_the_full_rows_in_both_layouts(log, dense, contexts, which):
    builder = dense if which == "dense" else FeatureBuilder(ease_reg=5.0, svd_factors=4, dense_items=20,
                                                            neighbours=5).fit(log)
    items = np.array([0, 7, 33, 59, 21])
    full = builder.features(contexts)
    for row, ctx in enumerate(contexts):
        np.testing.assert_allclose(builder.candidate_features(ctx, items), full[row, items], atol=1e-5)
    np.testing.assert_allclose(builder.features(contexts, items), full[:, items], atol=1e-6)


def test_a_restored_builder_scores_as_the_fitted_one_old_artifacts_included(log, contexts):
    builder = FeatureBuilder(ease_reg=5.0, svd_factors=4, dense_items=20, neighbours=5).fit(log)
    tensors = {f"features.{k}": v for k, v in builder.arrays.items()}
    again = FeatureBuilder.restore(builder.state(), tensors)
    np.testing.assert_array_equal(again.features(contexts), builder.features(contexts))
    small = FeatureBuilder(ease_reg=5.0, svd_factors=4).fit(log)
    old = {f"features.{k}": v for k, v in small.arrays.items()}
    old["features.ease_w"] = old.pop("features.ease_weights")  # the key before EASE's head + remainder
    state = {k: v for k, v in small.state().items() if k not in ("dense_items", "neighbours")}
    np.testing.assert_array_equal(FeatureBuilder.restore(state, old).features(contexts), small.features(contexts))


def test_the_ranker_trains_and_scores_past_the_dense_limit(log, contexts):
    config = KANConfig(hidden=(4,), epochs=2, learning_rate=1e-2, ease_reg=5.0, svd_factors=4, n_hard=5,
                       n_uniform=5, dense_items=20, neighbours=8)
    model = KANRanker(config)
    model.fit(log, FitOptions(seed=1, progress=False))
    assert model.features is not None and not model.features.dense
    scores = model.score_batch(contexts)
    assert scores.shape == (len(contexts), log.n_items) and np.isfinite(scores).all()
    one = model.score(contexts[0].history, np.arange(log.n_items), now=contexts[0].now)
    np.testing.assert_allclose(one, scores[0], atol=1e-4)
    assert dataclasses.asdict(model.config)["dense_items"] == 20


@pytest.mark.parametrize("which", ["dense", "sparse"])
def test_training_lists_hold_the_full_rows_features_of_their_items_only(log, dense, contexts, which):
    """The ranker's training lists take features for each list's items only: the same values the full rows give,
    the same items drawn (the EASE row, every item, picks the hard negatives)."""
    builder = dense if which == "dense" else FeatureBuilder(ease_reg=5.0, svd_factors=4, dense_items=20,
                                                            neighbours=5).fit(log)
    model = KANRanker(KANConfig(n_hard=4, n_uniform=3))
    labels = [np.array([ctx.history[-1], ctx.history[0]]) for ctx in contexts]
    lists = model._training_lists(builder, contexts, labels, np.random.default_rng(7)).numpy()
    full, rng, want = builder.features(contexts), np.random.default_rng(7), []
    for row, ctx in enumerate(contexts):
        np.testing.assert_allclose(builder.ease_rows([ctx])[0], full[row, :, FEATURES.index("ease")], atol=1e-6)
        for pos in labels[row]:
            cand = model._candidates(full[row, :, 0], ctx.history, pos, labels[row], rng)
            want.append(full[row, cand])
    assert lists.shape == (2 * len(contexts), 8, len(FEATURES))
    np.testing.assert_allclose(lists, np.stack(want), atol=1e-5)
