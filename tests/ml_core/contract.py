"""RecommenderContract: the checks every ml_core model passes.

Subclass it in tests/ml_core/models/test_<model>.py and implement ``make_model()``
with a tiny config (embedding 8, a few epochs, CPU)::

    class TestEASE(RecommenderContract):
        def make_model(self):
            return EASE(EASEConfig(reg=1.0))

The data is a small synthetic log with an obvious pattern: items come in groups of
GROUP_SIZE, each user belongs to one group and interacts with all of its items in a
random order. Under leave-one-out the held-out item is the only unseen item of the
user's group, so it must rank first. Knobs for subclasses: ``fit_options``,
``min_hit_rate_at_1``, ``unknown_user_scores_nan``, ``needs_history`` and
``score_atol`` (exported vs in-memory scores).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml_core.artifacts import ArtifactError
from ml_core.data import Interactions, interactions_from_arrays
from ml_core.evaluation import Split, evaluate, leave_one_out
from ml_core.interface import EmbeddingModel, FitOptions, UserContext
from ml_core.training import set_seed

N_GROUPS = 6
GROUP_SIZE = 6
USERS_PER_GROUP = 16


def synthetic_interactions(seed: int = 0) -> Interactions:
    """N_GROUPS * USERS_PER_GROUP users, each interacting with all items of its group in random order."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for g in range(N_GROUPS):
        for k in range(USERS_PER_GROUP):
            user = g * USERS_PER_GROUP + k
            order = rng.permutation(GROUP_SIZE) + g * GROUP_SIZE
            users += [user + 1] * GROUP_SIZE
            items += (order + 1).tolist()  # raw ids start at 1, like MovieLens
            times += (1_000_000 + 60 * np.arange(GROUP_SIZE) + 3600 * user).tolist()
    data = interactions_from_arrays(np.array(users), np.array(items), np.array(times), name="synthetic")
    data.item_titles = {i: f"Item {i}" for i in range(data.n_items)}
    return data


class RecommenderContract:
    """Shared contract tests; subclasses implement make_model()."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=None, patience=1000)
    min_hit_rate_at_1 = 0.9  # share of users whose held-out item must rank first
    unknown_user_scores_nan = True  # False for models with a history-free fallback (popularity)
    score_atol = 0.0  # tolerance between in-memory and exported scores (0 = identical)

    def make_model(self):  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> Split:
        return leave_one_out(synthetic_interactions(), seed=0)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, split):
        set_seed(cls.fit_options.seed)
        model = cls().make_model()
        model.fit(split.train, cls.fit_options)
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def exported(cls, fitted, tmp_path_factory) -> Path:
        directory = tmp_path_factory.mktemp(cls.__name__) / "artifact"
        fitted.export(directory)
        return directory

    # -- the contract -------------------------------------------------------------------------
    def test_scores_have_one_float32_per_candidate_in_order(self, fitted, split):
        history = split.train_seqs[0]
        candidates = np.array([5, 0, 3, 17])
        scores = fitted.score(history, candidates, user=0)
        assert scores.dtype == np.float32 and scores.shape == (4,)
        full = fitted.score_batch([UserContext(history=history, user=0)])
        assert full.shape == (1, split.n_items)
        np.testing.assert_allclose(scores, full[0, candidates], rtol=1e-5, atol=1e-6)
        reversed_scores = fitted.score(history, candidates[::-1], user=0)
        np.testing.assert_allclose(reversed_scores, scores[::-1], rtol=1e-5, atol=1e-6)

    def test_serving_path_scores_candidates_like_the_full_catalogue(self, fitted, exported, split):
        """score() after prepare_serving (candidates only, item-side state precomputed) = score_batch."""
        model = type(fitted).load(exported)
        model.prepare_serving("cpu")
        rng = np.random.default_rng(0)
        for u in (1, 4):
            history = split.train_seqs[u]
            times = 1_000_000.0 + 3600.0 * np.arange(len(history))
            candidates = np.concatenate([rng.choice(split.n_items, 12), history[:2], [-1, split.n_items]])
            known = (candidates >= 0) & (candidates < split.n_items)
            for user in (u, None):
                ctx = {"times": times, "now": float(times[-1]) + 7200.0, "user": user}
                full = fitted.score_batch([UserContext(history=history, **ctx)])[0]
                scores = model.score(history, candidates, **ctx)
                assert scores.dtype == np.float32 and np.isnan(scores[~known]).all()
                np.testing.assert_allclose(scores[known], full[candidates[known]], rtol=1e-5, atol=1e-5)

    def test_unknown_items_score_nan(self, fitted, split):
        scores = fitted.score(split.train_seqs[0], np.array([-1, 0, split.n_items, split.n_items + 5]), user=0)
        assert np.isnan(scores[[0, 2, 3]]).all()
        assert np.isfinite(scores[1])

    def test_unknown_user_without_history_scores_nan(self, fitted, split):
        scores = fitted.score([], np.arange(split.n_items), user=None)
        assert np.isnan(scores).all() == self.unknown_user_scores_nan
        if not self.unknown_user_scores_nan:
            assert np.isfinite(scores).all()

    def test_unknown_items_in_history_are_ignored(self, fitted, split):
        history = split.train_seqs[3]
        clean = fitted.score(history, np.arange(split.n_items), user=3)
        noisy = fitted.score(np.concatenate([[-1], history, [split.n_items + 3]]), np.arange(split.n_items), user=3)
        np.testing.assert_allclose(noisy, clean, rtol=1e-5, atol=1e-6)

    def test_held_out_item_ranks_first(self, fitted, split):
        metrics = evaluate(fitted, split, "test", full_only=True, k=1)
        assert metrics["hr@1"] >= self.min_hit_rate_at_1, metrics

    def test_export_then_load_gives_identical_scores(self, fitted, exported, split):
        loaded = type(fitted).load(exported)
        contexts = split.contexts("test", split.eval_users("test"))
        before, after = fitted.score_batch(contexts), loaded.score_batch(contexts)
        if self.score_atol:
            np.testing.assert_allclose(after, before, atol=self.score_atol, rtol=0)
        else:
            np.testing.assert_array_equal(after, before)
        assert loaded.name == fitted.name

    def test_tampered_artifact_is_refused(self, exported, fitted, tmp_path):
        import shutil

        copy = tmp_path / "copy"
        shutil.copytree(exported, copy)
        with open(copy / "weights.safetensors", "r+b") as fh:
            fh.seek(-1, 2)
            last = fh.read(1)
            fh.seek(-1, 2)
            fh.write(bytes([last[0] ^ 0xFF]))
        with pytest.raises(ArtifactError, match="checksum mismatch"):
            type(fitted).load(copy)

    def test_fixed_seed_gives_the_same_scores(self, fitted, split):
        set_seed(self.fit_options.seed)
        again = self.make_model()
        again.fit(split.train, self.fit_options)
        contexts = split.contexts("valid", np.arange(10))
        np.testing.assert_allclose(again.score_batch(contexts), fitted.score_batch(contexts), rtol=1e-5, atol=1e-6)

    def test_item_embeddings_are_one_row_per_item(self, fitted, split):
        if not isinstance(fitted, EmbeddingModel):  # the capability is declared (ml_core.interface)
            pytest.skip(f"{fitted.name} has no item embeddings")
        emb = fitted.item_embeddings()
        assert emb.ndim == 2 and emb.shape[0] == split.n_items
