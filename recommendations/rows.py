"""Portal reads: the rows of movies the pages show (home, movie detail, onboarding) with a reason per movie.

Rows come from the serving engine (``recommendations.serving``) when it is loaded; while it is not (no
artifacts yet, or a page rendered before the first request loaded it) they come from the catalog's own
signals, so every page always renders real movies with an honest explanation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from catalog import selectors as catalog
from events.selectors import event_engagement_counts_since

from . import serving, visual

logger = logging.getLogger(__name__)

ROW_SIZE = 12
BECAUSE_ROWS = 3  # "Because you watched …" rows, one per recent favourite
FAVOURITE_MIN = 4.0  # a rating at or above this makes a movie a "favourite"
LONG_TAIL_MAX_COUNT = 40  # "Discover" picks have at most this many ratings in the catalog
TRENDING_WINDOW = dt.timedelta(days=7)  # "Trending" counts ratings, clicks, watches and watchlist adds this recent
TRENDING_MIN_MOVIES = ROW_SIZE // 2  # fewer movies with recent activity: the row is the all-time popular list


@dataclass
class Pick:
    """One movie in a row, with the one-line reason shown on hover or tap."""

    movie: Any
    reason: str
    score: float | None = None
    movie_id: int = 0  # set while ``movie`` waits for a batched lookup (see ``_resolve``)


@dataclass
class Row:
    """A titled row of picks; ``key`` names it for tests and live refresh."""

    key: str
    title: str
    picks: list[Pick] = field(default_factory=list)
    note: str = ""


def _picks(movies: list[Any], reasons: dict[int, str] | None = None, default: str = "") -> list[Pick]:
    reasons = reasons or {}
    return [Pick(movie=m, reason=reasons.get(m.id, default)) for m in movies]


def _by_ids(items: list[tuple[int, str, float | None]], resolve: bool = True) -> list[Pick]:
    """(movie id, reason, score) triples -> picks in the same order, unknown ids skipped.

    With ``resolve=False`` the movies are looked up later, all rows at once, by ``_resolve``.
    """
    if not resolve:
        return [Pick(movie=None, reason=r, score=s, movie_id=i) for i, r, s in items]
    movies = {m.id: m for m in catalog.movie_list_by_ids(movie_ids=[i for i, _, _ in items])}
    return [Pick(movie=movies[i], reason=r, score=s) for i, r, s in items if i in movies]


def _resolve(rows: list[Row]) -> list[Row]:
    """Fill in every row's pending movies with one catalog query (instead of one per row)."""
    wanted = [p.movie_id for row in rows for p in row.picks if p.movie is None]
    if wanted:
        movies = {m.id: m for m in catalog.movie_list_by_ids(movie_ids=list(dict.fromkeys(wanted)))}
        for row in rows:
            row.picks = [p if p.movie is not None else Pick(movies[p.movie_id], p.reason, p.score)
                         for p in row.picks if p.movie is not None or p.movie_id in movies]
    return rows


def _genre_text(movie: Any) -> str:
    names = [g.name for g in movie.genres.all()][:2]
    return " & ".join(names) if names else "film"


def _popular_unseen(*, exclude: set[int], genres: list[str], limit: int) -> list[Any]:
    """The catalog's most-rated movies (in the given genres when any), skipping ``exclude``."""
    found: list[Any] = []
    seen = set(exclude)
    genre_filters: list[str | None] = [*genres] if genres else [None]  # no genre: the whole catalog
    for genre in genre_filters:
        for movie in catalog.movie_list(genre=genre, sort="popular")[: limit * 3]:
            if movie.id not in seen:
                found.append(movie)
                seen.add(movie.id)
        if len(found) >= limit * max(1, len(genres)):
            break
    found.sort(key=lambda m: -(m.rating_count or 0))
    return found[:limit]


def row_top_picks(*, user: User | None, rated: dict[int, float], genres: list[str],
                  resolve: bool = True, shown: frozenset[int] = frozenset()) -> Row:
    """"Top picks for you": the engine's ranking, or popular unseen movies in the favourite genres.

    ``shown``: movies an earlier row of the same page already shows (left out here)."""
    user_id = getattr(user, "pk", None)
    skip = set(rated) | shown
    items = serving.picks_for_user(user_id=user_id, k=ROW_SIZE, exclude=skip) if user_id else None
    if items:
        return Row("top-picks", "Top picks for you", _by_ids(items, resolve))
    movies = _popular_unseen(exclude=skip, genres=genres, limit=ROW_SIZE)
    why = {m.id: (f"Popular in {_genre_text(m)}, a genre you like" if genres else
                  f"One of the most-rated {_genre_text(m)} movies here") for m in movies}
    note = "" if rated else "Rate a few movies and these become yours."
    return Row("top-picks", "Top picks for you", _picks(movies, why), note=note)


def row_because(*, anchor: Any, exclude: set[int], resolve: bool = True) -> Row:
    """"Because you watched …": movies like one of the user's recent favourites."""
    items = serving.picks_similar(movie_id=anchor.id, k=ROW_SIZE, exclude=exclude)
    if items:
        picks = _by_ids(items, resolve)
    else:
        picks = [p for p in similar_from_catalog(movie=anchor, limit=ROW_SIZE * 2) if p.movie.id not in exclude]
    return Row(f"because-{anchor.id}", f"Because you watched {anchor.title}", picks[:ROW_SIZE])


def similar_from_catalog(*, movie: Any, limit: int) -> list[Pick]:
    """Same franchise first, then popular movies sharing the most genres (the catalog's own relations)."""
    picks = [Pick(m, f"Same franchise as {movie.title}") for m in catalog.movie_list_in_collection(movie=movie)]
    names = [g.name for g in movie.genres.all()]
    taken = {movie.id, *(p.movie.id for p in picks)}
    scored: list[tuple[int, int, Any]] = []
    for genre in names[:3]:
        for other in catalog.movie_list(genre=genre, sort="popular")[:60]:
            if other.id in taken:
                continue
            taken.add(other.id)
            common = [g.name for g in other.genres.all() if g.name in names]
            scored.append((len(common), other.rating_count or 0, other))
    scored.sort(key=lambda t: (-t[0], -t[1]))
    for shared, _, other in scored:
        picks.append(Pick(other, f"Shares {shared} genre{'s' if shared != 1 else ''} with {movie.title}"))
    return picks[:limit]


def row_discover(*, user: User | None, rated: dict[int, float], genres: list[str],
                 resolve: bool = True, shown: frozenset[int] = frozenset()) -> Row:
    """"Discover: long-tail picks": the debiased ranker's niche finds, or well-rated rarely-seen movies."""
    skip = set(rated) | shown
    items = serving.picks_long_tail(user_id=getattr(user, "pk", None), k=ROW_SIZE, exclude=skip)
    if items:
        return Row("discover", "Discover: long-tail picks", _by_ids(items, resolve))
    movies = catalog.movie_list_long_tail(min_rating=4.0, min_count=5, max_count=LONG_TAIL_MAX_COUNT,
                                          exclude=skip, limit=ROW_SIZE * 4 if genres else ROW_SIZE)
    if genres:
        wanted = set(genres)
        movies.sort(key=lambda m: not wanted.intersection(g.name for g in m.genres.all()))
    why = {m.id: f"Rated {m.rating_mean:.1f}★ by the {m.rating_count} people who found it" for m in movies}
    return Row("discover", "Discover: long-tail picks", _picks(movies[:ROW_SIZE], why))


def row_trending(*, rated: dict[int, float], shown: frozenset[int] = frozenset()) -> Row:
    """"Trending this week": the movies most rated, clicked, watched and listed in the last TRENDING_WINDOW; while
    too few movies had activity in it (a quiet or imported catalogue), "Popular all time" says what it is."""
    skip = set(rated) | shown
    since = timezone.now() - TRENDING_WINDOW
    recent = Counter(catalog.rating_counts_since(since=since)) + Counter(event_engagement_counts_since(since=since))
    ids = [movie_id for movie_id, _ in recent.most_common() if movie_id not in skip][:ROW_SIZE]
    if len(ids) >= TRENDING_MIN_MOVIES:
        movies = catalog.movie_list_by_ids(movie_ids=ids)
        days = TRENDING_WINDOW.days
        why = {m.id: f"{recent[m.id]} {'person' if recent[m.id] == 1 else 'people'} rated or watched it in the last "
                     f"{days} days" for m in movies}
        return Row("trending", "Trending this week", _picks(movies, why))
    movies = [m for m in catalog.movie_list(sort="popular")[: ROW_SIZE + len(skip)] if m.id not in skip][:ROW_SIZE]
    why = {m.id: f"{m.rating_count} ratings, {m.rating_mean or 0:.1f}★ on average" for m in movies}
    return Row("trending", "Popular all time", _picks(movies, why))


def home_rows(*, user: User | None, rated: dict[int, float], recent_favourites: list[Any],
              genres: list[str]) -> list[Row]:
    """Every row of the home page, in display order; empty rows are dropped. A movie appears in one row only:
    the "Because you watched" rows choose first, then top picks, discover and trending leave out what is taken."""
    because: list[Row] = []  # the most specific rows choose first; the page still shows top picks first
    for anchor in recent_favourites[:BECAUSE_ROWS]:
        because.append(row_because(anchor=anchor, exclude=set(rated) | _shown(because), resolve=False))
    top = row_top_picks(user=user, rated=rated, genres=genres, resolve=False, shown=_shown(because))
    rows = [top, *because]
    rows.append(row_discover(user=user, rated=rated, genres=genres, resolve=False, shown=_shown(rows)))
    rows.append(row_trending(rated=rated, shown=_shown(rows)))
    return [row for row in _resolve(rows) if row.picks]


def _shown(rows: list[Row]) -> frozenset[int]:
    """The movies these rows show (resolved or still waiting for their catalog lookup)."""
    return frozenset(p.movie.id if p.movie is not None else p.movie_id for row in rows for p in row.picks)


def _directors(movie: Any) -> list[str]:
    """Director names from the credits ``catalog.movie_get`` prefetches."""
    return [c.person.name for c in movie.credits.all() if c.role == "director"]


def detail_rows(*, movie: Any, exclude: set[int]) -> list[Row]:
    """Movie detail rows: "More like this", "Looks like this" (CLIP posters, when indexed) and "Same director".

    The franchise row is the catalog page's own "More from <collection>" (the same relation), so it is
    not repeated here.
    """
    rows: list[Row] = []
    items = serving.picks_similar(movie_id=movie.id, k=ROW_SIZE, exclude=exclude | {movie.id})
    like = (_by_ids(items) if items else []) or [p for p in similar_from_catalog(movie=movie, limit=ROW_SIZE * 2)
                                                  if p.movie.id not in exclude]
    rows.append(Row("more-like-this", "More like this", like[:ROW_SIZE]))
    looks = visual.picks_visual(movie_id=movie.id, k=ROW_SIZE, exclude=exclude)  # None: no poster index built
    if looks:
        rows.append(Row("looks-like-this", "Looks like this", _by_ids(looks)))
    graph = serving.picks_knowledge_graph(movie_id=movie.id, k=ROW_SIZE)
    directors = _directors(movie)
    if graph and graph.get("director"):
        name = directors[0] if directors else "the same director"
        picks = [Pick(p.movie, f"Also directed by {name}", p.score) for p in _by_ids(graph["director"])]
        rows.append(Row("director", f"More from {name}", picks))
    return [row for row in rows if row.picks]
