"""Rating writes: one rating per (user, movie); a new rating replaces the old one."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import Movie, Rating
from .movies import movie_rating_stats_refresh

RATING_MIN, RATING_MAX = 0.5, 5.0


def _validated_value(value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"value": f"{value!r} is not a number"}) from exc
    if not RATING_MIN <= number <= RATING_MAX or number * 2 != int(number * 2):
        raise ValidationError({"value": f"rating must be 0.5 to 5 in half steps, got {value!r}"})
    return number


@transaction.atomic
def rating_upsert(*, user: AbstractBaseUser, movie: Movie, value: float, rated_at: dt.datetime | None = None,
                  source: str = "web") -> Rating:
    """Store the user's rating of the movie, replacing an earlier one, and refresh the movie's stats."""
    number = _validated_value(value)
    when = rated_at or timezone.now()
    if timezone.is_naive(when):
        raise ValidationError({"rated_at": "rated_at must be timezone-aware"})
    rating, _ = Rating.objects.update_or_create(
        user=user, movie=movie, defaults={"value": number, "rated_at": when, "source": source})
    movie_rating_stats_refresh(movie_ids=[movie.id])
    return rating


@transaction.atomic
def rating_delete(*, user: AbstractBaseUser, movie: Movie) -> bool:
    """Delete the user's rating of the movie; True when there was one."""
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        movie_rating_stats_refresh(movie_ids=[movie.id])
    return bool(deleted)
