"""Rating writes: one rating per (user, movie); a new rating replaces the old one."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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


def time_window_problem(when: dt.datetime, *, now: dt.datetime | None = None) -> str | None:
    """Why ``when`` is no plausible time for a rating or event, or None: it must lie between
    ``EVENTS_MIN_OCCURRED_AT`` (MovieLens starts in 1995) and ``EVENTS_MAX_FUTURE_SKEW_S`` seconds from now."""
    raw = settings.EVENTS_MIN_OCCURRED_AT
    earliest = parse_datetime(raw) or dt.datetime.fromisoformat(raw)
    earliest = earliest if timezone.is_aware(earliest) else earliest.replace(tzinfo=dt.UTC)
    skew = float(settings.EVENTS_MAX_FUTURE_SKEW_S)
    if when < earliest:
        return f"must not be before {earliest.isoformat()}; got {when.isoformat()}"
    if when > (now or timezone.now()) + dt.timedelta(seconds=skew):
        return f"must not be more than {skew:g} s in the future; got {when.isoformat()}"
    return None


@transaction.atomic
def rating_upsert(*, user: User, movie: Movie, value: float, rated_at: dt.datetime | None = None,
                  source: str = "web") -> Rating:
    """Store the user's rating of the movie, replacing an earlier one, and refresh the movie's stats."""
    number = _validated_value(value)
    when = rated_at or timezone.now()
    if timezone.is_naive(when):
        raise ValidationError({"rated_at": "rated_at must be timezone-aware"})
    problem = time_window_problem(when)
    if problem:
        raise ValidationError({"rated_at": f"rated_at {problem}"})
    rating, _ = Rating.objects.update_or_create(
        user=user, movie=movie, defaults={"value": number, "rated_at": when, "source": source})
    movie_rating_stats_refresh(movie_ids=[movie.id])
    return rating


@transaction.atomic
def rating_delete(*, user: User, movie: Movie) -> bool:
    """Delete the user's rating of the movie; True when there was one."""
    deleted, _ = Rating.objects.filter(user=user, movie=movie).delete()
    if deleted:
        movie_rating_stats_refresh(movie_ids=[movie.id])
    return bool(deleted)
