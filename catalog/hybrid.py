"""The one search the portal and the API run: keyword, semantic, or both fused (the default).

Hybrid = reciprocal rank fusion (RRF, Cormack et al. 2009) of the keyword ranking (word matches, then titles a
typo away) and the semantic ranking (MiniLM neighbours of the query). Each ranking is cut to its relevant part
first, so a query with a few good answers returns a few, not always a full page:
- keyword: every word match (PostgreSQL full-text search needs every query word; the fallback keeps the hits
  scoring at least half the best) and every typo match;
- semantic: neighbours with cosine similarity at least SEMANTIC_FLOOR and within SEMANTIC_MARGIN of the best,
  the better-known first among about equally close ones (POPULARITY_WEIGHT).
When the semantic index is not built, hybrid answers with the keyword ranking alone and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import semantic
from .fuzzy import TypoHit
from .models import Movie
from .search import corrected_query, keyword_ranking
from .selectors import movie_list_by_ids, movie_rating_count_max, movie_rating_counts

MODES = ("hybrid", "keyword", "semantic")
DEFAULT_MODE = "hybrid"
RRF_K = 60  # the usual constant: damps the difference between rank 1 and rank 2 of one list
SEMANTIC_FLOOR = 0.35  # cosine under which a neighbour is unrelated (nonsense queries score about 0.2-0.3)
SEMANTIC_MARGIN = 0.2  # neighbours more than this below the best one are dropped
SEMANTIC_CANDIDATES = 300
# Among neighbours about as close, the ones people know first (as the keyword side breaks ties by rating count):
# the semantic ranking sorts by cosine + POPULARITY_WEIGHT x log(1 + ratings) / log(1 + the most ratings).
POPULARITY_WEIGHT = 0.15
RRF_WEIGHTS = {"keyword": 1.0, "meaning": 1.0}
# What the portal and the API say about a hit instead of a bare number.
MATCH_LABELS = {"words": "your words", "spelling": "a close spelling", "meaning": "similar meaning"}


@dataclass(frozen=True)
class SearchHit:
    movie: Movie
    score: float  # hybrid: RRF score; keyword: its relevance; semantic: cosine similarity + popularity prior
    matched_by: tuple[str, ...]  # among "words", "spelling" (keyword side) and "meaning" (semantic side)

    @property
    def match_label(self) -> str:
        return "Matches " + " and ".join(MATCH_LABELS[m] for m in self.matched_by)


@dataclass(frozen=True)
class SearchOutcome:
    query: str
    mode: str
    hits: list[SearchHit]
    corrections: tuple[tuple[str, str], ...] = ()  # (typed, title word) of the best typo match
    semantic_error: str = ""  # why the semantic side is missing, when it is
    notes: list[str] = field(default_factory=list)


def semantic_cut(hits: Sequence[tuple[int, float]], *, floor: float = SEMANTIC_FLOOR,
                 margin: float = SEMANTIC_MARGIN) -> list[tuple[int, float]]:
    """The relevant head of a semantic ranking (best first)."""
    if not hits:
        return []
    bar = max(floor, hits[0][1] - margin)
    return [(movie_id, score) for movie_id, score in hits if score >= bar]


def popularity_rerank(hits: Sequence[tuple[int, float]], counts: dict[int, int], *, most: int,
                      weight: float = POPULARITY_WEIGHT) -> list[tuple[int, float]]:
    """(id, cosine + weight x log(1 + ratings) / log(1 + most)), best first."""
    scale = math.log1p(max(most, 1))
    scored = [(item, cosine + weight * math.log1p(counts.get(item, 0)) / scale) for item, cosine in hits]
    return sorted(scored, key=lambda h: -h[1])


def rrf(rankings: dict[str, Sequence[int]], *, k: int = RRF_K,
        weights: dict[str, float] | None = None) -> list[tuple[int, float, tuple[str, ...]]]:
    """Reciprocal rank fusion: (id, sum over rankings of weight / (k + rank), rankings it was in), best first;
    ties keep the order of first appearance (the first ranking's order wins)."""
    scores: dict[int, float] = {}
    sources: dict[int, list[str]] = {}
    for name, ids in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            sources.setdefault(item, []).append(name)
    order = {item: position for position, item in enumerate(scores)}
    fused = sorted(scores, key=lambda item: (-scores[item], order[item]))
    return [(item, scores[item], tuple(sources[item])) for item in fused]


def semantic_ranking(query: str) -> list[tuple[int, float]]:
    """The relevant neighbours of the query, best first: cut by cosine, then ranked by cosine + the popularity
    prior; (id, that score)."""
    neighbours = semantic_cut(semantic.semantic_search(query, limit=SEMANTIC_CANDIDATES))
    if not neighbours or POPULARITY_WEIGHT <= 0:
        return neighbours
    return popularity_rerank(neighbours, movie_rating_counts(movie_ids=[i for i, _ in neighbours]),
                             most=movie_rating_count_max())


def movie_search(*, query: str, mode: str = DEFAULT_MODE, limit: int = 24) -> SearchOutcome:
    """Search the catalogue; ``mode`` is one of MODES. Raises semantic.SearchIndexMissing only in semantic mode."""
    query = query.strip()
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    if not query:
        return SearchOutcome(query, mode, [])
    keyword: list[tuple[Movie, float, str]] = []
    typos: list[TypoHit] = []
    if mode in ("hybrid", "keyword"):
        keyword, typos = keyword_ranking(query=query, limit=max(limit, 50) if mode == "hybrid" else limit)
    corrections = typos[0].corrections if typos and any(kind == "spelling" for _, _, kind in keyword) else ()
    if mode == "keyword":
        hits = [SearchHit(movie, score, (kind,)) for movie, score, kind in keyword[:limit]]
        return SearchOutcome(query, mode, hits, corrections)
    # A query whose words were typos is embedded as corrected: "matirx" means nothing to the model.
    meaning_query = corrected_query(query, corrections) if corrections else query
    try:
        neighbours = semantic_ranking(meaning_query)
    except semantic.SearchIndexMissing as exc:
        if mode == "semantic":
            raise
        hits = [SearchHit(movie, score, (kind,)) for movie, score, kind in keyword[:limit]]
        return SearchOutcome(query, mode, hits, corrections, semantic_error=str(exc))
    if mode == "semantic":
        cosine = dict(neighbours[:limit])
        movies = movie_list_by_ids(movie_ids=list(cosine))
        return SearchOutcome(query, mode, [SearchHit(m, cosine[m.id], ("meaning",)) for m in movies])
    kinds = {movie.id: kind for movie, _, kind in keyword}
    fused = rrf({"keyword": [movie.id for movie, _, _ in keyword], "meaning": [i for i, _ in neighbours]},
                weights=RRF_WEIGHTS)[:limit]
    known = {movie.id: movie for movie, _, _ in keyword}
    missing = [item for item, _, _ in fused if item not in known]
    known.update({movie.id: movie for movie in movie_list_by_ids(movie_ids=missing)})
    hits = [SearchHit(known[item], score, tuple(kinds[item] if s == "keyword" else s for s in sources))
            for item, score, sources in fused if item in known]
    return SearchOutcome(query, mode, hits, corrections)
