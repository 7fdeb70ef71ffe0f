"""Catalog reads used by pages, APIs and other apps (the only read path other apps may use)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, ExpressionWrapper, F, FloatField, Max, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from .models import Credit, Genre, Movie, Rating

SORTS = {"popular": ("-rating_count", "id"), "rating": ("-rating_bayes", "-rating_count", "id"),
         "newest": ("-year", "id"), "title": ("title", "id")}


def _with_bayesian_rating(movies: QuerySet[Movie]) -> QuerySet[Movie]:
    """Annotate ``rating_bayes``: the mean rating shrunk towards the catalogue's mean by a prior worth as many
    ratings as a typical movie has, so one 5-star rating does not outrank hundreds of 4.5s."""
    stats = Movie.objects.filter(rating_count__gt=0).aggregate(
        votes=Sum("rating_count"), stars=Sum(F("rating_count") * F("rating_mean")), movies=Count("id"))
    votes = float(stats["votes"] or 0)
    prior_mean = float(stats["stars"] or 0) / votes if votes else 0.0
    prior_votes = votes / stats["movies"] if stats["movies"] else 1.0
    return movies.annotate(rating_bayes=ExpressionWrapper(
        (F("rating_count") * Coalesce(F("rating_mean"), Value(0.0)) + Value(prior_votes * prior_mean))
        / (F("rating_count") + Value(prior_votes)), output_field=FloatField()))


def movie_get(*, movie_id: int) -> Movie:
    """One movie with its genres, collection and credits; raises Http404 when unknown."""
    credits = Credit.objects.select_related("person").order_by("role", "order")
    try:
        return (Movie.objects.select_related("collection")
                .prefetch_related("genres", Prefetch("credits", queryset=credits)).get(id=movie_id))
    except (Movie.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise Http404(f"No movie with id {movie_id}") from exc


def movie_list(*, genre: str | None = None, year: int | None = None, year_min: int | None = None,
               year_max: int | None = None, text: str | None = None, min_rating: float | None = None,
               sort: str = "popular") -> QuerySet[Movie]:
    """Movies filtered by genre (name or slug), year or year range, title text and minimum mean rating."""
    movies = Movie.objects.select_related("collection").prefetch_related("genres")
    if genre:
        movies = movies.filter(Q(genres__slug__iexact=genre) | Q(genres__name__iexact=genre))
    if year is not None:
        movies = movies.filter(year=year)
    if year_min is not None:
        movies = movies.filter(year__gte=year_min)
    if year_max is not None:
        movies = movies.filter(year__lte=year_max)
    if text:
        movies = movies.filter(title__icontains=text.strip())
    if min_rating is not None:
        movies = movies.filter(rating_mean__gte=min_rating)
    if sort == "rating":
        movies = _with_bayesian_rating(movies)
    return movies.order_by(*SORTS.get(sort, SORTS["popular"]))


def movie_list_top_rated(*, min_count: int = 50, limit: int = 12) -> list[Movie]:
    """Best mean rating among movies with at least `min_count` ratings."""
    return list(Movie.objects.filter(rating_count__gte=min_count).prefetch_related("genres")
                .order_by("-rating_mean", "-rating_count", "id")[:limit])


def movie_list_long_tail(*, min_rating: float, min_count: int, max_count: int, exclude: set[int],
                         limit: int) -> list[Movie]:
    """Well-rated, rarely rated movies (best mean first), skipping `exclude`; filtered and cut in the database."""
    movies = (Movie.objects.filter(rating_mean__gte=min_rating, rating_count__gte=min_count,
                                   rating_count__lte=max_count)
              .exclude(id__in=exclude).select_related("collection").prefetch_related("genres")
              .order_by("-rating_mean", "-rating_count", "id"))
    return list(movies[:limit])


def movie_list_by_ids(*, movie_ids: list[int]) -> list[Movie]:
    """Movies in the order of the given ids (unknown ids are skipped), with genres prefetched."""
    found = Movie.objects.select_related("collection").prefetch_related("genres").in_bulk(movie_ids)
    return [found[i] for i in movie_ids if i in found]


def movie_rating_counts(*, movie_ids: list[int]) -> dict[int, int]:
    """movie id -> how many ratings it has in this catalogue."""
    return dict(Movie.objects.filter(id__in=movie_ids).order_by().values_list("id", "rating_count"))


def movie_rating_count_max() -> int:
    """The most ratings any movie has (0 for an empty catalogue)."""
    return Movie.objects.aggregate(most=Max("rating_count"))["most"] or 0


def movie_poster_paths(*, limit: int | None = None) -> list[tuple[int, str]]:
    """(movie id, TMDB poster path) of every movie that has one, by id; the visual index's input."""
    rows = Movie.objects.exclude(poster_path="").order_by("id").values_list("id", "poster_path")
    return list(rows[:limit] if limit is not None else rows)


def movie_list_in_collection(*, movie: Movie, limit: int = 12) -> list[Movie]:
    """Other movies of the same collection (franchise), oldest first."""
    if not movie.collection_id:
        return []
    return list(Movie.objects.filter(collection_id=movie.collection_id).exclude(id=movie.id)
                .prefetch_related("genres").order_by("year", "id")[:limit])


def genre_list() -> list[Genre]:
    """All genres, by name."""
    return list(Genre.objects.all())


def rating_counts_since(*, since: Any, limit: int = 200) -> dict[int, int]:
    """movie id -> ratings made at or after ``since`` (the most rated first, at most ``limit`` movies)."""
    rows = (Rating.objects.filter(rated_at__gte=since).values("movie_id").annotate(n=Count("id"))
            .order_by("-n", "movie_id")[:limit])
    return {row["movie_id"]: row["n"] for row in rows}


def rating_sources() -> list[str]:
    """The distinct sources of the ratings, sorted. On PostgreSQL a walk of the source index (one index lookup
    per source: a loose index scan written as a recursive query), not a scan of every rating."""
    if connection.vendor != "postgresql":
        return list(Rating.objects.order_by("source").values_list("source", flat=True).distinct())
    table = connection.ops.quote_name(Rating._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE walk(source) AS ((SELECT source FROM {table} ORDER BY source LIMIT 1) UNION ALL "
            f"SELECT (SELECT r.source FROM {table} r WHERE r.source > walk.source ORDER BY r.source LIMIT 1) "
            "FROM walk WHERE walk.source IS NOT NULL) SELECT source FROM walk WHERE source IS NOT NULL")
        return [row[0] for row in cursor.fetchall()]


def genre_count_max() -> int:
    """The most genres any catalogue movie has (0 for an empty catalogue)."""
    most = (Movie.genres.through.objects.values("movie_id").annotate(n=Count("genre_id"))
            .aggregate(most=Max("n"))["most"])
    return int(most or 0)


def rating_get(*, user: Any, movie: Movie) -> Rating | None:
    """The user's rating of the movie, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Rating.objects.filter(user=user, movie=movie).first()


def ratings_as_arrays(*, dataset: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All ratings (of one source/dataset when given) as (user_ids, movie_ids, unix timestamps, values) arrays."""
    rows = Rating.objects.order_by()
    if dataset:
        rows = rows.filter(source=dataset)
    data = list(rows.values_list("user_id", "movie_id", "rated_at", "value").iterator(chunk_size=50_000))
    if not data:
        empty = np.array([], dtype=np.int64)
        return empty, empty.copy(), empty.copy(), np.array([], dtype=np.float32)
    users, movies, stamps, values = zip(*data, strict=True)
    timestamps = np.fromiter((s.timestamp() for s in stamps), dtype=np.float64, count=len(stamps)).astype(np.int64)
    return (np.asarray(users, dtype=np.int64), np.asarray(movies, dtype=np.int64), timestamps,
            np.asarray(values, dtype=np.float32))


def movie_metadata_map() -> dict[int, dict[str, Any]]:
    """movie id -> the metadata the serving engine's content index and knowledge graph use."""
    genres: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in Movie.genres.through.objects.order_by("movie_id", "genre__name").values_list(
            "movie_id", "genre__name"):
        genres[movie_id].append(name)
    directors: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in Credit.objects.filter(role=Credit.Role.DIRECTOR).order_by("movie_id", "order").values_list(
            "movie_id", "person__name"):
        directors[movie_id].append(name)
    fields = ("id", "title", "year", "collection_id", "collection__name", "vote_average", "vote_count", "popularity",
              "poster_path", "overview", "tagline", "keywords", "tags", "rating_count", "rating_mean")
    result: dict[int, dict[str, Any]] = {}
    for row in Movie.objects.order_by("id").values(*fields).iterator(chunk_size=5000):
        movie_id = row["id"]
        row["genres"] = genres.get(movie_id, [])
        row["directors"] = directors.get(movie_id, [])
        row["director"] = row["directors"][0] if row["directors"] else None
        row["collection"] = row.pop("collection__name")
        result[movie_id] = row
    return result


def rating_list_for_user(*, user: Any) -> QuerySet[Rating]:
    """The user's ratings with their movies, newest first (portal history, online learning seeds)."""
    return (Rating.objects.filter(user=user).select_related("movie")
            .order_by("-rated_at", "-id"))


def rating_map_for_user(*, user: Any, movie_ids: list[int] | None = None) -> dict[int, float]:
    """movie id -> the user's rating, for the given movies (all of the user's ratings when None)."""
    rows = Rating.objects.filter(user=user)
    if movie_ids is not None:
        rows = rows.filter(movie_id__in=movie_ids)
    return dict(rows.order_by().values_list("movie_id", "value"))

