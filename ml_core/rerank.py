"""Stage 3 of serving: the seed's boosts, MMR diversity, and a fairness auditor.

Boosts compare each candidate with anchor items (the movie asked about, or the user's recent
favourites), on relevance min-max scaled to [0, 1] so the seed's magnitudes keep their meaning:
same franchise +0.25, same director +0.10, released within 5 years +0.03, quality +0.02,
no shared genre -0.15. MMR (lambda 0.7) then trades relevance for diversity by cosine similarity.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

BOOSTS = {"franchise": 0.25, "director": 0.10, "era": 0.03, "quality": 0.02, "no_shared_genre": -0.15}
MMR_LAMBDA = 0.7
ERA_YEARS = 5
N_POP_BUCKETS = 5
EPS = 1e-6


@dataclass
class ItemFacts:
    """Per-item arrays the re-ranker and auditor use (index = serving item index)."""

    franchise: np.ndarray  # int64 code, -1 unknown
    director: np.ndarray  # int64 code, -1 unknown
    year: np.ndarray  # float32, NaN unknown
    genres: np.ndarray  # bool (n_items, n_genres)
    quality: np.ndarray  # bool: well rated by many
    popularity: np.ndarray  # float64 interaction counts
    genre_names: list[str]

    @classmethod
    def from_metadata(cls, metadata: list[dict[str, Any]], popularity: np.ndarray) -> ItemFacts:
        """Codes and flags from one metadata dict per item (title, year, genres, director, collection, votes)."""
        def codes(values: list[Any]) -> np.ndarray:
            seen: dict[Any, int] = {}
            return np.asarray([-1 if not v else seen.setdefault(v, len(seen)) for v in values], np.int64)

        names = sorted({g for m in metadata for g in (m.get("genres") or [])})
        gidx = {g: i for i, g in enumerate(names)}
        genres = np.zeros((len(metadata), max(len(names), 1)), bool)
        for i, m in enumerate(metadata):
            genres[i, [gidx[g] for g in (m.get("genres") or [])]] = True
        quality = np.asarray([_is_quality(m) for m in metadata], bool)
        return cls(codes([m.get("collection") for m in metadata]),
                   codes([m.get("director") or (m.get("directors") or [None])[0] for m in metadata]),
                   np.asarray([m.get("year") or np.nan for m in metadata], np.float32), genres, quality,
                   np.asarray(popularity, np.float64), names)


def _is_quality(meta: dict[str, Any]) -> bool:
    """TMDB vote average >= 7 with >= 100 votes, else a catalogue mean >= 4 over >= 20 ratings."""
    if (meta.get("vote_average") or 0) >= 7.0 and (meta.get("vote_count") or 0) >= 100:
        return True
    return (meta.get("rating_mean") or 0) >= 4.0 and (meta.get("rating_count") or 0) >= 20


def apply_boosts(relevance: np.ndarray, candidates: np.ndarray, anchors: np.ndarray, facts: ItemFacts
                 ) -> tuple[np.ndarray, list[list[str]]]:
    """Relevance scaled to [0, 1] plus the seed's boosts against any anchor; returns (scores, boosts per item)."""
    scores, flags = boost_flags(relevance, candidates, anchors, facts)
    return scores, boost_names(flags, range(len(scores)))


def boost_names(flags: dict[str, np.ndarray], positions: Any) -> list[list[str]]:
    """The boosts applied to each of ``positions`` (names in BOOSTS order)."""
    hits = [(name, flags[name]) for name in BOOSTS if name in flags]
    return [[name for name, hit in hits if hit[i]] for i in positions]


def boost_flags(relevance: np.ndarray, candidates: np.ndarray, anchors: np.ndarray, facts: ItemFacts
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Like :func:`apply_boosts`, with a hit mask per boost instead of per-item lists (the request path
    names the boosts of the served items only)."""
    r = np.asarray(relevance, np.float64)
    span = r.max() - r.min() if len(r) else 0.0
    scaled = (r - r.min()) / span if span > 0 else np.ones_like(r)
    c = np.asarray(candidates, np.int64)
    a = np.asarray(anchors, np.int64)
    flags: dict[str, np.ndarray] = {"quality": facts.quality[c]}
    if len(a):
        fc, fa = facts.franchise[c], facts.franchise[a]
        dc, da = facts.director[c], facts.director[a]
        flags["franchise"] = ((fc[:, None] == fa[None]) & (fc[:, None] >= 0)).any(1)
        flags["director"] = ((dc[:, None] == da[None]) & (dc[:, None] >= 0)).any(1)
        gap = np.abs(facts.year[c][:, None] - facts.year[a][None])
        flags["era"] = (gap <= ERA_YEARS).any(1)  # NaN compares false
        has_genres = facts.genres[c].any(1)
        shared = (facts.genres[c].astype(np.uint8) @ facts.genres[a].T.astype(np.uint8)) > 0
        flags["no_shared_genre"] = np.asarray(has_genres & facts.genres[a].any(1).any() & ~shared.any(1))
    bonus = np.zeros(len(c))
    for name in BOOSTS:
        if name in flags:
            bonus += BOOSTS[name] * flags[name]
    return scaled + bonus, flags


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lam: float = MMR_LAMBDA) -> np.ndarray:
    """Maximal marginal relevance: greedily pick argmax lam*rel - (1-lam)*max cosine to the picked ones.

    relevance: (C,); vectors: (C, d) (normalised inside). Returns positions into the candidates, best first.
    """
    rel = np.asarray(relevance, np.float64)
    n = len(rel)
    k = min(k, n)
    if n == 0:
        return np.zeros(0, np.int64)
    v = np.asarray(vectors, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    penalty = (1 - lam) * (v @ v.T)  # (C, C) once, then cheap row maxima
    gain = lam * rel
    best_pen = np.zeros(n)
    order = np.empty(k, np.int64)
    for step in range(k):
        pick = int(np.argmax(gain - best_pen))
        order[step] = pick
        np.maximum(best_pen, penalty[pick], out=best_pen)
        best_pen[pick] = np.inf
    return order


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats of two count (or weight) vectors, each smoothed by EPS and normalised to sum 1."""
    p = (p + EPS) / (p + EPS).sum()
    q = (q + EPS) / (q + EPS).sum()
    return float((p * np.log(p / q)).sum())


def gini(exposure: np.ndarray) -> float:
    """Gini coefficient of an exposure vector (0 = equal, -> 1 = one item gets everything)."""
    x = np.sort(np.asarray(exposure, np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


class FairnessAuditor:
    """KL of a list's genre and popularity-bucket distributions vs the catalogue (or the user's profile),
    and the Gini of exposure aggregated over every audited list (thread-safe)."""

    def __init__(self, facts: ItemFacts) -> None:
        self.facts = facts
        ranks = np.argsort(np.argsort(facts.popularity, kind="stable"), kind="stable")
        self.bucket = (ranks * N_POP_BUCKETS // max(len(ranks), 1)).astype(np.int64)  # 0 = tail .. 4 = head
        self.catalogue_genres = self._genre_dist(np.arange(len(ranks)))
        self.catalogue_pop = np.bincount(self.bucket, minlength=N_POP_BUCKETS).astype(np.float64)
        self.exposure = np.zeros(len(ranks))
        self._sums = {"kl_genre_catalogue": 0.0, "kl_popularity_catalogue": 0.0, "lists": 0}
        self._lock = threading.Lock()

    def _genre_dist(self, items: np.ndarray) -> np.ndarray:
        g = self.facts.genres[np.asarray(items, np.int64)].astype(np.float64)
        g = g / np.maximum(g.sum(1, keepdims=True), 1.0)
        dist: np.ndarray = g.sum(0)
        return dist

    def audit(self, items: np.ndarray, profile: np.ndarray | None = None, *, record: bool = True) -> dict[str, Any]:
        """Per-list fairness report; also added to the aggregate when ``record``."""
        items = np.asarray(items, np.int64)
        genre = self._genre_dist(items)
        pop = np.bincount(self.bucket[items], minlength=N_POP_BUCKETS).astype(np.float64)
        report = {"kl_genre_catalogue": kl_divergence(genre, self.catalogue_genres),
                  "kl_popularity_catalogue": kl_divergence(pop, self.catalogue_pop),
                  "popularity_buckets": (pop / max(pop.sum(), 1)).round(3).tolist()}
        if profile is not None and len(profile):
            profile = np.asarray(profile, np.int64)
            report["kl_genre_profile"] = kl_divergence(genre, self._genre_dist(profile))
            report["kl_popularity_profile"] = kl_divergence(pop, np.bincount(self.bucket[profile], minlength=N_POP_BUCKETS))
        if record:
            with self._lock:
                np.add.at(self.exposure, items, 1.0)
                self._sums["kl_genre_catalogue"] += report["kl_genre_catalogue"]
                self._sums["kl_popularity_catalogue"] += report["kl_popularity_catalogue"]
                self._sums["lists"] += 1
        return report

    def summary(self) -> dict[str, Any]:
        """Aggregate over recorded lists: Gini of exposure, coverage, mean KLs."""
        with self._lock:
            n = max(self._sums["lists"], 1)
            return {"lists": self._sums["lists"], "gini_exposure": gini(self.exposure),
                    "coverage": float((self.exposure > 0).mean()) if len(self.exposure) else 0.0,
                    "mean_kl_genre_catalogue": self._sums["kl_genre_catalogue"] / n,
                    "mean_kl_popularity_catalogue": self._sums["kl_popularity_catalogue"] / n}
