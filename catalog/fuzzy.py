"""Typo tolerance for keyword search: titles whose words are a few edits from the query's ("matirx", "godfater").

Candidates come from PostgreSQL's ``pg_trgm`` (trigram word similarity to the title) where the extension is
installed (migration 0005), and from every title elsewhere (SQLite). Both are then scored the same way, in
Python, by optimal-string-alignment edit distance per word (a swap of two letters is one edit, which trigrams
score poorly): every query word must be within ``allowed_edits`` of a title word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection

from .models import Movie

WORD = re.compile(r"\w+", re.UNICODE)
TRIGRAM_THRESHOLD = 0.25  # pg_trgm word_similarity(query, title) for a title to be a candidate
MAX_CANDIDATES = 500


@dataclass(frozen=True)
class TypoHit:
    """A title that matches every query word within its allowed edits."""

    movie_id: int
    score: float  # mean per-word similarity (1 - edits / (length + 1)) + half the share of title words matched
    corrections: tuple[tuple[str, str], ...]  # (query word, title word) where they differ


def allowed_edits(word: str) -> int:
    """Edits tolerated in a query word: none under 4 letters, 1 up to 7 ("matirx" -> "matrix": one swap), 2 from 8
    (2 edits on 6 letters would turn "matrix" into "martin")."""
    return 0 if len(word) < 4 else 1 if len(word) <= 7 else 2


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours); limit + 1 when larger."""
    if abs(len(a) - len(b)) > limit or len(set(a) ^ set(b)) > 2 * limit:  # an edit changes at most 2 letters
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=50_000)
def title_words(title: str) -> tuple[str, ...]:
    return tuple(WORD.findall(title.lower()))


def typo_scores(tokens: list[str], titles: list[tuple[int, str]], *, exact: frozenset[str] = frozenset()
                ) -> list[TypoHit]:
    """Titles matching every token within its allowed edits (none for the tokens in ``exact``), with at least one
    token corrected; in the order of ``titles``."""
    tokens = [t for t in dict.fromkeys(tokens) if t]
    if not tokens or all(allowed_edits(t) == 0 or t in exact for t in tokens):
        return []
    best: dict[tuple[str, str], int] = {}  # (token, title word) -> distance, computed once per pair
    hits: list[TypoHit] = []
    for movie_id, title in titles:
        words = title_words(title)
        if not words:
            continue
        similarity, corrections, matched = 0.0, [], set()
        for token in tokens:
            limit = 0 if token in exact else allowed_edits(token)
            found: tuple[int, str] | None = None
            for word in words:
                key = (token, word)
                if key not in best:
                    best[key] = 0 if token == word else osa_distance(token, word, limit) if limit else 1
                if best[key] <= limit and (found is None or best[key] < found[0]):
                    found = (best[key], word)
            if found is None:
                break
            similarity += 1.0 - found[0] / (len(token) + 1)
            matched.add(found[1])
            if found[0]:
                corrections.append((token, found[1]))
        else:
            if corrections:
                hits.append(TypoHit(movie_id, similarity / len(tokens) + 0.5 * len(matched) / len(set(words)),
                                    tuple(corrections)))
    return hits


def trigram_available() -> bool:
    """Whether this database is PostgreSQL with the pg_trgm extension installed (one catalogue lookup, each
    search: cheaper than a stale answer after the extension is added or dropped)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def candidate_titles(query: str) -> list[tuple[int, str, int]]:
    """(id, title, rating count) of the titles worth scoring: pg_trgm's nearest on PostgreSQL, all elsewhere."""
    movies = Movie.objects.order_by()
    if trigram_available():
        from django.contrib.postgres.search import TrigramWordSimilarity

        movies = (movies.annotate(similarity=TrigramWordSimilarity(query, "title"))
                  .filter(similarity__gte=TRIGRAM_THRESHOLD).order_by("-similarity", "-rating_count")
                  [:MAX_CANDIDATES])
    return list(movies.values_list("id", "title", "rating_count"))


def movie_typo_search(*, tokens: list[str], query: str, limit: int, known_exact: bool = False) -> list[TypoHit]:
    """Titles a typing slip away from the query words, best first (more-rated first among equals). With
    ``known_exact`` (the words matched something already), a word that is some title's word is taken as typed."""
    rows = candidate_titles(query)
    counts = {movie_id: count for movie_id, _, count in rows}
    exact: frozenset[str] = frozenset()
    if known_exact:
        vocabulary = {word for _, title, _ in rows for word in title_words(title)}
        exact = frozenset(t for t in tokens if t in vocabulary)
    hits = typo_scores(tokens, [(movie_id, title) for movie_id, title, _ in rows], exact=exact)
    hits.sort(key=lambda h: (-h.score, -counts[h.movie_id], h.movie_id))
    return hits[:limit]
