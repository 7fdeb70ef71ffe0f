"""Derived movie fields: rating statistics and the keyword-search text."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Avg, Count
from django.utils import timezone

from ..models import Credit, Movie, Rating
from .bulk import bulk_update_fast

BATCH_SIZE = 2000


def _changed_only(movies: list[Movie], fields: list[str]) -> int:
    """bulk_update the given movies (already filtered to real changes), stamping updated_at."""
    now = timezone.now()
    for movie in movies:
        movie.updated_at = now
    return bulk_update_fast(movies, [*fields, "updated_at"], batch_size=BATCH_SIZE)


def movie_rating_stats_refresh(*, movie_ids: Iterable[int] | None = None) -> int:
    """Recompute rating_count/rating_mean from the ratings; returns how many movies changed."""
    movies = Movie.objects.only("id", "rating_count", "rating_mean")
    ratings = Rating.objects.all()
    if movie_ids is not None:
        ids = list(movie_ids)
        movies = movies.filter(id__in=ids)
        ratings = ratings.filter(movie_id__in=ids)
    stats = {row["movie_id"]: (row["n"], row["mean"]) for row in
             ratings.order_by().values("movie_id").annotate(n=Count("id"), mean=Avg("value"))}
    changed = []
    for movie in movies:
        count, mean = stats.get(movie.id, (0, None))
        mean = None if mean is None else round(float(mean), 4)
        if movie.rating_count != count or movie.rating_mean != mean:
            movie.rating_count, movie.rating_mean = count, mean
            changed.append(movie)
    return _changed_only(changed, ["rating_count", "rating_mean"])


def movie_search_text_refresh(*, movie_ids: Iterable[int] | None = None) -> int:
    """Rebuild search_text (genres, directors, collection, keywords, tags); returns how many movies changed."""
    movies = Movie.objects.order_by("id")
    links = Movie.genres.through.objects.order_by("movie_id", "genre__name")
    credits = Credit.objects.filter(role=Credit.Role.DIRECTOR).order_by("movie_id", "order")
    if movie_ids is not None:
        ids = list(movie_ids)
        movies, links, credits = movies.filter(id__in=ids), links.filter(movie_id__in=ids), credits.filter(
            movie_id__in=ids)
    parts: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in links.values_list("movie_id", "genre__name"):
        parts[movie_id].append(name)
    for movie_id, name in credits.values_list("movie_id", "person__name"):
        parts[movie_id].append(name)
    changed = []
    for movie_id, old, collection, keywords, tags in movies.values_list(
            "id", "search_text", "collection__name", "keywords", "tags").iterator(chunk_size=BATCH_SIZE):
        text = " | ".join(parts.get(movie_id, []) + ([collection] if collection else []) + list(keywords or [])
                          + list(tags or []))
        if old != text:
            changed.append(Movie(id=movie_id, search_text=text))
    return _changed_only(changed, ["search_text"])
