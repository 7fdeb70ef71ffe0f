"""The fairness report's per-group numbers, from per-user ranks and top-k lists (plain numpy).

For one group of evaluated users:

* NDCG@k and HR@k: the mean over the group's users of 1/log2(rank + 1) (0 past k) and [rank <= k], with 95%
  intervals: NDCG's from the normal approximation (mean +- 1.96 s / sqrt(n), s with n - 1), HR's the Wilson score
  interval of hits out of n (honest for small groups and rates near 0). One user: no interval (None). Intervals
  are clipped to [0, 1].
* Whether an attribute's groups differ beyond chance: a permutation test of the between-group variance of
  per-user NDCG@k (:func:`permutation_p`; labels shuffled ``PERMUTATIONS`` times, seeded).
* Exposure Gini: the Gini coefficient of how often each catalogue item appears in the group's top-k lists
  (:func:`ml_core.rerank.gini`; 0 = every item equally often, -> 1 = a few items take every slot). It grows as a
  group shrinks (fewer slots over the same catalogue), so ``gini_matched`` also gives the mean Gini of
  ``MATCHED_DRAWS`` seeded draws of ``matched_users`` users of the group, the same size for every group.
* KL divergences (:func:`ml_core.rerank.kl_divergence`, nats) of the recommended slots' genre distribution (each
  item's genres share its one unit) and popularity-bucket distribution (train-popularity quintiles, 0 = tail,
  4 = head, as the serving auditor) against the same distribution of the group's own histories and of the
  catalogue (every item once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rerank import N_POP_BUCKETS, gini, kl_divergence

Z95 = 1.959963984540054
MATCHED_DRAWS = 20
PERMUTATIONS = 2000


def ndcg_hr(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user NDCG@k and HR@k of one-based ranks (any rank past k, or inf, counts 0)."""
    r = np.asarray(ranks, np.float64)
    hit = r <= k
    return np.where(hit, 1.0 / np.log2(np.where(hit, r, 1.0) + 1.0), 0.0), hit.astype(np.float64)


def mean_ci(values: np.ndarray, lo_bound: float = 0.0, hi_bound: float = 1.0
            ) -> tuple[float, float | None, float | None]:
    """(mean, low, high): the normal-approximation 95% interval of the mean, clipped to the metric's range
    [lo_bound, hi_bound]; no interval below 2 values."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return float("nan"), None, None
    mean = float(v.mean())
    if len(v) < 2:
        return mean, None, None
    half = Z95 * float(v.std(ddof=1)) / math.sqrt(len(v))
    return mean, max(lo_bound, mean - half), min(hi_bound, mean + half)


def wilson_ci(hits: int, n: int) -> tuple[float | None, float | None]:
    """The Wilson score 95% interval of a proportion hits / n (None, None without trials)."""
    if n <= 0:
        return None, None
    p, z2 = hits / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def popularity_buckets(popularity: np.ndarray) -> np.ndarray:
    """Quintile of each item by popularity (ties by index): 0 = the least popular fifth .. 4 = the head."""
    ranks = np.argsort(np.argsort(np.asarray(popularity), kind="stable"), kind="stable")
    buckets: np.ndarray = (ranks * N_POP_BUCKETS // max(len(ranks), 1)).astype(np.int64)
    return buckets


@dataclass
class ItemSpace:
    """What the distributions are taken over: each item's genres and popularity bucket, and the catalogue's."""

    genres: np.ndarray  # float64 (n_items, n_genres): each row sums to 1, or 0 for an item without genres
    bucket: np.ndarray  # int64 (n_items,)
    genre_names: list[str]

    @classmethod
    def build(cls, genres: np.ndarray, popularity: np.ndarray, genre_names: list[str]) -> ItemSpace:
        g = np.asarray(genres, np.float64)
        return cls(g / np.maximum(g.sum(1, keepdims=True), 1.0), popularity_buckets(popularity), list(genre_names))

    def genre_counts(self, items: np.ndarray) -> np.ndarray:
        """(n_genres,) summed genre shares of ``items`` (repeats count again)."""
        counts: np.ndarray = self.genres[np.asarray(items, np.int64).ravel()].sum(0)
        return counts

    def bucket_counts(self, items: np.ndarray) -> np.ndarray:
        """(5,) how many of ``items`` fall in each popularity bucket."""
        return np.bincount(self.bucket[np.asarray(items, np.int64).ravel()], minlength=N_POP_BUCKETS).astype(float)

    def catalogue(self) -> tuple[np.ndarray, np.ndarray]:
        """The catalogue's genre and bucket distributions (every item once)."""
        every = np.arange(len(self.bucket))
        return self.genre_counts(every), self.bucket_counts(every)


def list_metrics(ranks: np.ndarray, tops: np.ndarray, histories: list[np.ndarray], space: ItemSpace, *, k: int,
                 matched_users: int, seed: int = 0) -> dict[str, Any]:
    """Accuracy, exposure and calibration of one group's lists.

    ranks: (n,) one-based rank of each user's held-out item (inf = not in the list); tops: (n, k) item indices
    shown; histories: each user's history (what the model saw).
    """
    ndcg, hr = ndcg_hr(ranks, k)
    n = len(ndcg)
    mean, lo, hi = mean_ci(ndcg)
    hr_lo, hr_hi = wilson_ci(int(hr.sum()), n)
    n_items = len(space.bucket)
    tops = np.asarray(tops, np.int64)
    shown = tops[tops >= 0]
    exposure = np.bincount(shown, minlength=n_items).astype(np.float64)
    history = np.concatenate([np.asarray(h, np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
    genre, pop = space.genre_counts(shown), space.bucket_counts(shown)
    cat_genre, cat_pop = space.catalogue()
    out: dict[str, Any] = {
        "n_users": n, f"ndcg@{k}": mean, f"ndcg@{k}_ci": [lo, hi], f"hr@{k}": float(hr.mean()) if n else math.nan,
        f"hr@{k}_ci": [hr_lo, hr_hi], "gini_exposure": gini(exposure),
        "gini_matched": matched_gini(tops, n_items, matched_users, seed),
        "coverage": float((exposure > 0).mean()) if n_items else 0.0,
        "kl_genre_history": kl_divergence(genre, space.genre_counts(history)),
        "kl_genre_catalogue": kl_divergence(genre, cat_genre),
        "kl_popularity_history": kl_divergence(pop, space.bucket_counts(history)),
        "kl_popularity_catalogue": kl_divergence(pop, cat_pop),
        "popularity_share": (pop / max(pop.sum(), 1.0)).round(4).tolist(),
    }
    return out


def matched_gini(tops: np.ndarray, n_items: int, size: int, seed: int) -> float | None:
    """Mean exposure Gini of MATCHED_DRAWS seeded draws of ``size`` users' lists (None for a smaller group)."""
    if size <= 0 or len(tops) < size:
        return None
    rng = np.random.default_rng(seed)
    n_draws = 1 if len(tops) == size else MATCHED_DRAWS  # the whole group is its only draw
    values = []
    for _ in range(n_draws):
        pick = tops[rng.choice(len(tops), size, replace=False)]
        values.append(gini(np.bincount(pick[pick >= 0], minlength=n_items)))
    return float(np.mean(values))


def between_group_variance(values: np.ndarray, codes: np.ndarray, n_groups: int) -> float:
    """sum over groups of n_g (mean_g - mean)^2 / n: how far the group means spread (0 when all are equal)."""
    v = np.asarray(values, np.float64)
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    means = np.bincount(codes, weights=v, minlength=n_groups) / np.maximum(counts, 1.0)
    return float((counts * (means - v.mean()) ** 2).sum() / max(len(v), 1))


def permutation_p(values: np.ndarray, codes: np.ndarray, *, n: int = PERMUTATIONS, seed: int = 0) -> float | None:
    """P-value of the groups' spread under "the group does not matter": the share of label shuffles whose
    between-group variance reaches the observed one (with the observed counted, so never 0). None for one group."""
    codes = np.asarray(codes, np.int64)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if n_groups < 2:
        return None
    observed = between_group_variance(values, codes, n_groups)
    rng = np.random.default_rng(seed)
    reached = sum(between_group_variance(values, rng.permutation(codes), n_groups) >= observed - 1e-15
                  for _ in range(n))
    return (reached + 1) / (n + 1)
