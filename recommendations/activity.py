"""The visitor's own activity as the portal shows and changes it: ratings, watchlist, and undo.

Writes go through the owning apps' services: ratings through ``events`` (so the event is streamed, learned
from and pushed live), removals through ``catalog``'s rating service. Reads use their selectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from catalog import selectors as catalog
from catalog import services as catalog_services
from events import selectors as event_selectors
from events import services as event_services

logger = logging.getLogger(__name__)


@dataclass
class HistoryEntry:
    movie: Any
    value: float
    rated_at: datetime


def ratings_map(*, user: User | AnonymousUser, movie_ids: list[int] | None = None) -> dict[int, float]:
    """movie id -> the user's rating, for the given movies (all the user's ratings when None)."""
    if not getattr(user, "is_authenticated", False):
        return {}
    return dict(catalog.rating_map_for_user(user=user, movie_ids=movie_ids))


def rating_history(*, user: User | AnonymousUser, limit: int | None = 50) -> list[HistoryEntry]:
    """The user's ratings, newest first."""
    if not getattr(user, "is_authenticated", False):
        return []
    rows = catalog.rating_list_for_user(user=user)
    rows = rows if limit is None else rows[:limit]
    return [HistoryEntry(movie=r.movie, value=r.value, rated_at=r.rated_at) for r in rows]


def recent_favourites(*, user: User | AnonymousUser, limit: int, min_value: float = 4.0) -> list[Any]:
    """The user's most recently rated movies at or above ``min_value``."""
    return [e.movie for e in rating_history(user=user, limit=200) if e.value >= min_value][:limit]


def rating_set(*, user: User, movie_id: int, value: float) -> float | None:
    """Rate a movie (0.5-5 in half steps); returns the previous rating for undo."""
    movie = catalog.movie_get(movie_id=movie_id)
    before = catalog.rating_get(user=user, movie=movie)
    previous = before.value if before else None
    event_services.event_record(user=user, kind="rating", movie_id=movie.id, value=float(value))
    logger.info("user %s rated movie %s: %s (was %s)", user.pk, movie.id, value, previous)
    return previous


def rating_clear(*, user: User, movie_id: int) -> float | None:
    """Remove the user's rating of a movie; returns the removed value for undo."""
    movie = catalog.movie_get(movie_id=movie_id)
    before = catalog.rating_get(user=user, movie=movie)
    if before is None:
        return None
    catalog_services.rating_delete(user=user, movie=movie)
    return before.value


def rating_restore(*, user: User, movie_id: int, value: float | None) -> None:
    """Undo: put back a previous rating, or remove the rating when there was none."""
    if value is None:
        rating_clear(user=user, movie_id=movie_id)
    else:
        rating_set(user=user, movie_id=movie_id, value=value)


def watchlist_ids(*, user: User | AnonymousUser) -> list[int]:
    """Movie ids on the user's watchlist, newest first."""
    if not user.is_authenticated:
        return []
    return list(event_selectors.watchlist_movie_ids(user=user))


def watchlist_available() -> bool:
    """Whether pages offer the watchlist toggle (always, now that ``events`` owns the watchlist)."""
    return True


def watchlist_set(*, user: User, movie_id: int, on: bool) -> bool:
    """Add a movie to (on=True) or remove it from the watchlist; returns the new state."""
    movie = catalog.movie_get(movie_id=movie_id)
    event_services.watchlist_set(user=user, movie_id=movie.id, on=on)
    return on
