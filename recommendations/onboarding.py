"""Onboarding: new members rate movies they know, group by group, until recommendations have enough signal."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from accounts import selectors as accounts_selectors
from accounts import services as accounts_services
from catalog import selectors as catalog

from . import activity

TARGET = 5  # ratings after which the personal models have enough to go on
GROUP_SIZE = 12
NO_GENRE = "(no genres listed)"  # MovieLens' placeholder: not a genre anyone picks


def needs_onboarding(*, user: User) -> bool:
    """True for a member who has neither finished onboarding nor rated enough movies yet."""
    if accounts_selectors.profile_get(user=user).onboarding_done:
        return False
    return len(activity.ratings_map(user=user)) < TARGET


def genre_choices() -> list[Any]:
    """The genres a member may pick as favourites (onboarding and the account page)."""
    return [g for g in catalog.genre_list() if g.name != NO_GENRE]


def genres_save(*, user: User, genres: list[str]) -> None:
    """Store the favourite genres picked on the onboarding or account page (unknown names are dropped)."""
    known = {g.name for g in catalog.genre_list()}
    accounts_services.profile_update(user=user, favourite_genres=[g for g in genres if g in known])


def finish(*, user: User) -> None:
    accounts_services.onboarding_complete(user=user)


def _group_keys(favourites: list[str]) -> list[str]:
    """"popular" first, then the favourite genres, then every other genre by name."""
    others = [g.name for g in genre_choices() if g.name not in favourites]
    return ["popular", *favourites, *others]


def onboarding_context(*, user: User, group: str) -> dict[str, Any]:
    """One group of well-known movies the member has not rated yet, and the progress so far."""
    profile = accounts_selectors.profile_get(user=user)
    favourites = list(profile.favourite_genres or [])
    keys = _group_keys(favourites)
    current = group if group in keys else keys[0]
    rated = activity.ratings_map(user=user)
    movies = catalog.movie_list(genre=None if current == "popular" else current, sort="popular")
    picks = [m for m in movies[: GROUP_SIZE * 4] if m.id not in rated][:GROUP_SIZE]
    position = keys.index(current)
    return {
        "group": current,
        "group_title": "Movies almost everyone has seen" if current == "popular" else f"Well-known {current}",
        "movies": picks,
        "next_group": keys[(position + 1) % len(keys)],
        "rated_count": len(rated),
        "target": TARGET,
        "remaining": max(0, TARGET - len(rated)),
        "ready": len(rated) >= TARGET,
        "percent": min(100, round(100 * len(rated) / TARGET)),
        "genres": genre_choices(),
        "favourites": favourites,
    }
