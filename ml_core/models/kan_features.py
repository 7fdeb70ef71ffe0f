"""Features per (user, candidate) for the KAN ranker: base-model scores, popularity, recency, genres, metadata.

The base models are fitted inside the builder on the data it is given: EASE (the shared
:class:`ml_core.models.ease.EASE`), an item-item cosine neighbourhood on the last items, and a
truncated-SVD embedding model. Time features use weekly bins of the training log, evaluated at the
request time `now`, so they are the same at training, evaluation and serving time.

Size: histories are sparse rows, so a user's base-model scores cost O(history x n_items), not
O(n_items^2). A catalogue of up to `dense_items` items keeps the exact dense item x item cosine (and
EASE solves densely over it); a larger one keeps each item's `neighbours` most similar items (a CSR,
:func:`ml_core.models.itemknn.item_neighbours`) and EASE's head + sparse remainder, so no
n_items x n_items array exists (60k items dense: 14 GB per matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from ..interface import FitOptions, UserContext
from .base import binary_rows, known
from .ease import EASE, EASEConfig
from .itemknn import item_neighbours

WEEK = 7 * 86400
FEATURES = (
    "ease", "ease_z", "knn_recent", "knn_last", "svd", "log_pop", "pop_1w", "pop_4w", "item_age_w",
    "year", "year_gap", "genre_cos", "user_len",
)
DENSE_ITEMS = EASEConfig.max_items  # EASE's own dense limit: one threshold for both base models
NEIGHBOURS = 200  # cosine neighbours kept per item above DENSE_ITEMS


class FeatureBuilder:
    """Fitted feature extractor: `features(contexts)` -> (B, n_items, F) float32."""

    def __init__(self, ease_reg: float = 250.0, svd_factors: int = 64, recent: int = 10,
                 dense_items: int = DENSE_ITEMS, neighbours: int = NEIGHBOURS) -> None:
        self.ease_reg, self.svd_factors, self.recent = ease_reg, svd_factors, recent
        self.dense_items, self.neighbours = dense_items, neighbours
        self.arrays: dict[str, np.ndarray] = {}
        self.week0 = 0
        self._ease: EASE | None = None
        self._cosine: Any = None  # dense (n, n) ndarray, or CSR (n, n) of each item's top neighbours

    @property
    def n_features(self) -> int:
        return len(FEATURES)

    def fit(self, data: Any) -> FeatureBuilder:
        """Fit the base models and the item statistics on a training log."""
        from scipy.sparse.linalg import svds

        x = data.matrix()
        ease = EASE(EASEConfig(reg=self.ease_reg, max_items=self.dense_items))
        ease.fit(data, FitOptions(progress=False))
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        if data.n_items <= self.dense_items:
            co = (x.T @ x).toarray().astype(np.float64)
            norms = np.sqrt(np.maximum(np.diag(co), 1.0))
            cosine = co / norms[:, None] / norms[None, :]
            del co
            np.fill_diagonal(cosine, 0.0)
            neighbourhood = {"cosine": cosine.astype(np.float32)}
            del cosine
        else:
            s = item_neighbours(x, k=self.neighbours, shrink=0.0)
            neighbourhood = {"cos_indptr": s.indptr.astype(np.int64), "cos_indices": s.indices.astype(np.int64),
                             "cos_data": s.data.astype(np.float32)}
        k = int(min(self.svd_factors, min(x.shape) - 1))
        _, _, vt = svds(x.astype(np.float64), k=k, random_state=0)
        self.week0 = int(data.times.min()) if len(data) else 0
        weeks = (data.times - self.week0) // WEEK
        n_weeks = int(weeks.max()) + 2 if len(data) else 2
        week_counts = np.zeros((data.n_items, n_weeks + 1), np.float32)
        np.add.at(week_counts, (data.items, weeks + 1), 1.0)
        first_week = np.full(data.n_items, n_weeks, np.float32)
        np.minimum.at(first_week, data.items, weeks.astype(np.float32))
        years = np.array([data.item_years.get(i, np.nan) for i in range(data.n_items)], np.float32)
        years = np.where(np.isnan(years), np.nanmean(years) if np.isfinite(years).any() else 1990.0, years)
        names = sorted({g for gs in data.item_genres.values() for g in gs}) or ["none"]
        genres = np.zeros((data.n_items, len(names)), np.float32)
        for i, gs in data.item_genres.items():
            for g in gs:
                genres[i, names.index(g)] = 1.0
        self.arrays = {
            **{f"ease_{k}": v for k, v in ease.arrays().items()}, **neighbourhood,
            "svd_v": vt.T.astype(np.float32), "log_pop": np.log1p(counts).astype(np.float32),
            "week_cum": np.cumsum(week_counts, axis=1), "first_week": first_week, "years": years,
            "genres": genres / np.maximum(np.linalg.norm(genres, axis=1, keepdims=True), 1e-6),
        }
        # row-major, as a restored artifact is: scipy copies a column-major operand on every sparse @ dense
        self.arrays = {k: np.ascontiguousarray(v) for k, v in self.arrays.items()}
        self._derive()
        return self

    def _derive(self) -> None:
        """The scoring objects behind the arrays: EASE and the cosine neighbourhood."""
        a = self.arrays
        n = len(a["log_pop"])
        self._ease = EASE.from_arrays({k[5:]: v for k, v in a.items() if k.startswith("ease_")}, n)
        self._cosine = a["cosine"] if "cosine" in a else sparse.csr_matrix(
            (a["cos_data"], a["cos_indices"], a["cos_indptr"]), shape=(n, n))

    @property
    def dense(self) -> bool:
        """Whether the item x item cosine is held densely (a catalogue of at most `dense_items` items)."""
        return isinstance(self._cosine, np.ndarray)

    def features(self, contexts: Sequence[UserContext], items: np.ndarray | None = None) -> np.ndarray:
        """(B, n_items, F) float32 features of every item (or of `items` only) for each context."""
        assert self._ease is not None  # fit() or restore() first
        a = self.arrays
        n = len(a["log_pop"])
        b = len(contexts)
        idx = np.arange(n) if items is None else np.asarray(items, np.int64)
        histories = [known(ctx.history, n) for ctx in contexts]
        hist = binary_rows(histories, n)
        recent = binary_rows([h[-self.recent :] for h in histories], n)
        last = np.array([h[-1] if len(h) else 0 for h in histories], np.int64)
        now_w = np.array([self._week(ctx) for ctx in contexts], np.int64)
        n_seen = np.asarray(hist.sum(1), np.float32).ravel()
        ease_all = self._ease.score_rows(hist)  # full rows: the z-score needs every item
        ease = ease_all if items is None else ease_all[:, idx]
        ease_z = (ease - ease_all.mean(1, keepdims=True)) / (ease_all.std(1, keepdims=True) + 1e-6)
        knn_recent = self._spread(recent @ self._cosine, idx, items is None)
        knn_recent /= np.maximum(np.asarray(recent.sum(1), np.float32), 1.0)
        knn_last = self._spread(self._cosine[last], idx, items is None)
        user_vec = (hist @ a["svd_v"]) / np.sqrt(np.maximum(n_seen, 1.0))[:, None]
        svd = user_vec @ a["svd_v"][idx].T
        cum = a["week_cum"][idx]
        cols = cum.shape[1] - 1
        w = np.clip(now_w, 0, cols)  # counts of whole weeks before the request week: no look-ahead
        pop_1w = np.log1p(cum[:, w].T - cum[:, np.clip(w - 1, 0, cols)].T)
        pop_4w = np.log1p(cum[:, w].T - cum[:, np.clip(w - 4, 0, cols)].T)
        item_age = np.log1p(np.maximum(now_w[:, None] - a["first_week"][idx][None], 0.0))  # future = brand new
        years = a["years"][idx]
        mean_year = (hist @ a["years"]) / np.maximum(n_seen, 1.0)
        year_gap = np.abs(years[None] - mean_year[:, None]) / 20.0
        profile = np.asarray(hist @ a["genres"])
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-6)
        genre_cos = profile @ a["genres"][idx].T
        shape = (b, len(idx))
        user_len = np.log1p(n_seen)
        cols_ = [ease, ease_z, knn_recent, knn_last, svd, np.broadcast_to(a["log_pop"][idx], shape), pop_1w, pop_4w,
                 item_age, np.broadcast_to((years - 1990.0) / 20.0, shape), year_gap, genre_cos,
                 np.broadcast_to(user_len[:, None], shape)]
        return np.stack(cols_, axis=-1).astype(np.float32)

    def _spread(self, rows: Any, idx: np.ndarray, every_item: bool) -> np.ndarray:
        """(B, len(idx)) float32 columns `idx` of cosine rows (an ndarray, or a CSR when the cosine is sparse)."""
        full = np.asarray(rows if isinstance(rows, np.ndarray) else rows.toarray(), np.float32)
        return full if every_item else full[:, idx]

    def _week(self, ctx: UserContext) -> int:
        now = ctx.now if ctx.now is not None else (ctx.times[-1] if ctx.times is not None and len(ctx.times)
                                                   else self.week0)
        return int((float(now) - self.week0) // WEEK)

    def ease_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """(B, n_items) float32 EASE scores of each context's history over every item (the first feature)."""
        assert self._ease is not None  # fit() or restore() first
        n = len(self.arrays["log_pop"])
        return self._ease.score_rows(binary_rows([known(ctx.history, n) for ctx in contexts], n))

    def candidate_features(self, ctx: UserContext, items: np.ndarray, ease_all: np.ndarray | None = None
                           ) -> np.ndarray:
        """(len(items), F) float32 features of one context for the given items only (the serving path).

        The same features as ``features([ctx], items)[0]``, built from the history's rows instead of
        (1, n_items) history rows times item x item matrices. ``ease_all``: the context's row of
        :meth:`ease_rows` when the caller has it already.
        """
        assert self._ease is not None  # fit() or restore() first
        a = self.arrays
        n = len(a["log_pop"])
        idx = np.asarray(items, np.int64)
        h = known(ctx.history, n)
        seen, recent = np.unique(h), np.unique(h[-self.recent :])
        n_seen = float(len(seen))
        last = h[-1] if len(h) else 0
        now_w = self._week(ctx)
        if ease_all is None:
            ease_all = self.ease_rows([ctx])[0]  # the z-score needs all
        ease = ease_all[idx]
        ease_z = (ease - ease_all.mean()) / (ease_all.std() + 1e-6)
        knn_recent = self._neighbours(recent, idx).sum(0) / max(float(len(recent)), 1.0)
        knn_last = self._neighbours(np.array([last]), idx)[0]
        user_vec = a["svd_v"][seen].sum(0) / np.sqrt(max(n_seen, 1.0))
        svd = a["svd_v"][idx] @ user_vec
        cum = a["week_cum"]
        cols = cum.shape[1] - 1
        w = min(max(now_w, 0), cols)
        now_counts = cum[idx, w]
        pop_1w = np.log1p(now_counts - cum[idx, min(max(w - 1, 0), cols)])
        pop_4w = np.log1p(now_counts - cum[idx, min(max(w - 4, 0), cols)])
        item_age = np.log1p(np.maximum(now_w - a["first_week"][idx], 0.0))
        years = a["years"][idx]
        mean_year = a["years"][seen].sum() / max(n_seen, 1.0)
        year_gap = np.abs(years - mean_year) / 20.0
        profile = a["genres"][seen].sum(0)
        profile /= max(float(np.linalg.norm(profile)), 1e-6)
        genre_cos = a["genres"][idx] @ profile
        shape = (len(idx),)
        cols_ = [ease, ease_z, knn_recent, knn_last, svd, a["log_pop"][idx], pop_1w, pop_4w, item_age,
                 (years - 1990.0) / 20.0, year_gap, genre_cos, np.full(shape, np.log1p(n_seen))]
        return np.stack(cols_, axis=-1).astype(np.float32)

    def _neighbours(self, rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(len(rows), len(idx)) float32 cosine of the items `rows` to the items `idx`."""
        block = self._cosine[rows][:, idx]
        return np.asarray(block if self.dense else block.toarray(), np.float32)

    def state(self) -> dict[str, Any]:
        return {"ease_reg": self.ease_reg, "svd_factors": self.svd_factors, "recent": self.recent,
                "week0": self.week0, "dense_items": self.dense_items, "neighbours": self.neighbours}

    @classmethod
    def restore(cls, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> FeatureBuilder:
        fb = cls(state["ease_reg"], state["svd_factors"], state["recent"],
                 state.get("dense_items", DENSE_ITEMS), state.get("neighbours", NEIGHBOURS))
        fb.week0 = int(state["week0"])
        fb.arrays = {k[len("features."):]: np.asarray(v) for k, v in tensors.items() if k.startswith("features.")}
        if "ease_w" in fb.arrays:  # an artifact written before EASE's head + remainder: its dense weights
            fb.arrays["ease_weights"] = fb.arrays.pop("ease_w")
        fb._derive()
        return fb
