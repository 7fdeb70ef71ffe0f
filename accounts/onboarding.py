"""Cold-start onboarding: popular movies by genre to pick from, and the picks stored as ratings.

Onboarding is the one account step that reads the catalogue, so catalog's public selectors and services
are imported inside the functions: importing ``accounts`` never loads ``catalog``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .services import onboarding_complete

logger = logging.getLogger(__name__)

LIKED_RATING = 4.5  # a pick says "I like this", stored as a high explicit rating


def onboarding_candidates(*, preferred: list[str], genres: int = 6, per_genre: int = 6) -> list[dict[str, Any]]:
    """[{genre, movies}] for the preferred genres first, then the biggest ones, each with its most rated movies."""
    from catalog.selectors import genre_list, movie_list

    names = [g.name for g in genre_list()]
    ordered = [n for n in preferred if n in names] + sorted(
        (n for n in names if n not in preferred),
        key=lambda n: -movie_list(genre=n).filter(rating_count__gt=0).count())
    groups, seen = [], set()
    for name in ordered:
        movies = [m for m in movie_list(genre=name, sort="popular")[: per_genre * 3] if m.id not in seen][:per_genre]
        if movies:
            seen.update(m.id for m in movies)
            groups.append({"genre": name, "movies": movies})
        if len(groups) == genres:
            break
    return groups


@transaction.atomic
def onboarding_submit(*, user: AbstractBaseUser, favourite_genres: list[str], liked_movie_ids: list[int]) -> int:
    """Store the genres and the liked movies (as ratings), mark onboarding done; returns movies stored."""
    from catalog.selectors import movie_list_by_ids
    from catalog.services import rating_upsert

    movies = movie_list_by_ids(movie_ids=liked_movie_ids)
    for movie in movies:
        rating_upsert(user=user, movie=movie, value=LIKED_RATING)
    onboarding_complete(user=user, favourite_genres=favourite_genres)
    logger.info("user %s onboarded with %d movies", user.pk, len(movies))
    return len(movies)
