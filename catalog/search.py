"""Keyword search: PostgreSQL full-text search on PostgreSQL, a portable token-scoring fallback elsewhere."""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import F, Q

from .models import Movie

TOKEN = re.compile(r"[\w']+", re.UNICODE)
STOPWORDS = frozenset("a an and the of in on at to for with by from is are was be it its this that or as".split())
MAX_CANDIDATES = 2000


def search_tokens(query: str) -> list[str]:
    """Lower-cased query words without stopwords (all words when every one is a stopword)."""
    words = [w.lower() for w in TOKEN.findall(query)]
    kept = [w for w in words if w not in STOPWORDS and len(w) > 1]
    return kept or words


def search_vector():  # noqa: ANN201 - a Django expression
    """The weighted document searched on PostgreSQL; the GIN index in migration 0002 uses the same expression."""
    from django.contrib.postgres.search import SearchVector

    return (SearchVector("title", weight="A", config="english")
            + SearchVector("search_text", weight="B", config="english")
            + SearchVector("overview", weight="C", config="english"))


def movie_keyword_search(*, query: str, limit: int = 20) -> list[tuple[Movie, float]]:
    """Movies matching the query words, best first, with a relevance score."""
    if not search_tokens(query):
        return []
    if connection.vendor == "postgresql":
        return _postgres(query, limit)
    return _fallback(query, limit)


def _postgres(query: str, limit: int) -> list[tuple[Movie, float]]:
    from django.contrib.postgres.search import SearchQuery, SearchRank

    search_query = SearchQuery(query, config="english", search_type="websearch")
    movies = (Movie.objects.annotate(document=search_vector())
              .filter(document=search_query)
              .annotate(rank=SearchRank(F("document"), search_query))
              .prefetch_related("genres")
              .order_by("-rank", "-rating_count", "id")[:limit])
    return [(m, float(m.rank)) for m in movies]


def _fallback(query: str, limit: int) -> list[tuple[Movie, float]]:
    """Score = 3 per word in the title + 2 per word in genres/people/keywords/tags + 1 per word in the overview,
    + 5 when the whole query is in the title; ties broken by how often the movie is rated."""
    tokens = search_tokens(query)
    phrase = " ".join(TOKEN.findall(query.lower()))
    matches = Q()
    for token in tokens:
        matches |= Q(title__icontains=token) | Q(search_text__icontains=token) | Q(overview__icontains=token)
    rows = Movie.objects.filter(matches).values_list("id", "title", "search_text", "overview", "rating_count")
    scored: list[tuple[float, int, int]] = []
    for movie_id, title, text, overview, count in rows[:MAX_CANDIDATES]:
        title_words = set(TOKEN.findall(title.lower()))
        text_words = set(TOKEN.findall(text.lower()))
        overview_words = set(TOKEN.findall(overview.lower()))
        score = sum(3.0 * (t in title_words) + 2.0 * (t in text_words) + 1.0 * (t in overview_words)
                    for t in tokens)
        if phrase and phrase in title.lower():
            score += 5.0
        if score > 0:
            scored.append((score, count, movie_id))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    top = scored[:limit]
    found = Movie.objects.prefetch_related("genres").in_bulk([movie_id for _, _, movie_id in top])
    return [(found[movie_id], score) for score, _, movie_id in top]
