"""Keyword search: PostgreSQL full-text search on PostgreSQL, a portable token-scoring fallback elsewhere, and
titles a typing slip away from the query (catalog.fuzzy: pg_trgm candidates on PostgreSQL)."""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Length

from .fuzzy import TypoHit, movie_typo_search
from .models import Movie

TOKEN = re.compile(r"[\w']+", re.UNICODE)
STOPWORDS = frozenset("a an and the of in on at to for with by from is are was be it its this that or as".split())
MAX_CANDIDATES = 2000
FALLBACK_CUTOFF = 0.5  # the fallback matches any query word: it keeps the hits scoring at least half the best


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
    """Movies matching the query words, best first, with a relevance score; then titles a typo away."""
    return [(movie, score) for movie, score, _ in keyword_ranking(query=query, limit=limit)[0]]


def keyword_ranking(*, query: str, limit: int = 20) -> tuple[list[tuple[Movie, float, str]], list[TypoHit]]:
    """(movie, score, how) best first, and the typo matches behind it.

    When the query has words no title has (or matched nothing), the closest titles' spellings are tried: the
    query rewritten with the best typo match's words ("matirx" -> "matrix") is searched first ("spelling"), then
    the query as typed ("words"), then the remaining typo matches ("spelling", scored below the last word match).
    """
    tokens = search_tokens(query)
    if not tokens:
        return [], []
    exact = _word_search(query, limit)
    typos = movie_typo_search(tokens=tokens, query=query, limit=limit, known_exact=bool(exact))
    ranked: list[tuple[Movie, float, str]] = []
    if typos:
        ranked += [(m, s, "spelling") for m, s in _word_search(corrected_query(query, typos[0].corrections), limit)]
    seen = {movie.id for movie, _, _ in ranked}
    ranked += [(movie, score, "words") for movie, score in exact if movie.id not in seen]
    seen |= {movie.id for movie, _ in exact}
    fresh = [hit for hit in typos if hit.movie_id not in seen]
    found = Movie.objects.prefetch_related("genres").in_bulk([hit.movie_id for hit in fresh])
    floor = min((score for _, score, _ in ranked), default=1.0)
    ranked += [(found[hit.movie_id], floor * hit.score / 2.0, "spelling") for hit in fresh if hit.movie_id in found]
    return ranked[:limit], typos


def corrected_query(query: str, corrections: tuple[tuple[str, str], ...]) -> str:
    """The query with each corrected word replaced by the title word it was matched to."""
    fixes = dict(corrections)
    return " ".join(fixes.get(word.lower(), word) for word in TOKEN.findall(query))


def _word_search(query: str, limit: int) -> list[tuple[Movie, float]]:
    return _postgres(query, limit) if connection.vendor == "postgresql" else _fallback(query, limit)


def _postgres(query: str, limit: int) -> list[tuple[Movie, float]]:
    from django.contrib.postgres.search import SearchQuery, SearchRank

    search_query = SearchQuery(query, config="english", search_type="websearch")
    phrase = " ".join(TOKEN.findall(query.lower()))
    # A title that is the query, then titles containing it as typed, shortest first, lead (as the fallback's
    # phrase bonus does): "matrix" is The Matrix before the sequel whose overview says "matrix" twice.
    title_match = Case(When(title__iexact=phrase, then=Value(2)), When(title__icontains=phrase, then=Value(1)),
                       default=Value(0), output_field=IntegerField())
    movies = (Movie.objects.annotate(document=search_vector())
              .filter(document=search_query)
              .annotate(rank=SearchRank(F("document"), search_query), title_match=title_match)
              .annotate(title_extra=Case(When(title_match=1, then=Length("title")), default=Value(0)))
              .prefetch_related("genres")
              .order_by("-title_match", "title_extra", "-rank", "-rating_count", "id")[:limit])
    return [(m, float(m.rank) + m.title_match) for m in movies]


def _fallback(query: str, limit: int) -> list[tuple[Movie, float]]:
    """Score = 3 per word in the title + 2 per word in genres/people/keywords/tags + 1 per word in the overview,
    + 5 when the whole query is in the title (+ 3 more when it is the title); ties broken by how often the movie is rated. Any query word may
    match, so only the hits scoring at least FALLBACK_CUTOFF of the best are kept."""
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
            score += 5.0 + 3.0 * (phrase == " ".join(TOKEN.findall(title.lower())))
        if score > 0:
            scored.append((score, count, movie_id))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    top = [row for row in scored if row[0] >= FALLBACK_CUTOFF * scored[0][0]][:limit]
    found = Movie.objects.prefetch_related("genres").in_bulk([movie_id for _, _, movie_id in top])
    return [(found[movie_id], score) for score, _, movie_id in top]
