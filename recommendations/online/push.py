"""The live push: each affected user's refreshed "Top picks", sent to their open pages (``events.live``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from django.urls import NoReverseMatch, reverse

from accounts.selectors import user_get
from events.live import live_push_recommendations
from events.models import Event

from .. import activity, rows, serving

logger = logging.getLogger(__name__)


def _engine_items(*, user: Any, k: int, exclude: set[int]) -> list[dict[str, Any]] | None:
    """The engine's list for the user without explanations (the push must be quick); None without an engine.

    The engine already leaves out the user's last HISTORY_LIMIT rated movies, so only ratings older than
    that window can come back and need room in the list.
    """
    spare = max(0, len(exclude) - serving.HISTORY_LIMIT)
    try:
        items = serving.recommend_user(user=user, user_id=user.pk, k=k + spare, explain=False)["items"]
    except Exception as exc:  # noqa: BLE001 - no bundle, or serving failed: the catalog rows stand in
        logger.info("live refresh without the engine: %s", exc)
        return None
    return [{"movie_id": int(i["movie_id"]), "title": i.get("title"), "year": i.get("year"),
             "reason": i.get("explanation") or "", "score": i.get("score")}
            for i in items if int(i["movie_id"]) not in exclude][:k]


def recommendations_payload(*, user_id: int) -> dict[str, Any]:
    """The user's refreshed "Top picks" as JSON for the live push (the page may also refetch its rows)."""
    user = user_get(user_id=user_id)
    if user is None:
        raise LookupError(f"user {user_id} does not exist")
    rated = activity.ratings_map(user=user)
    items = _engine_items(user=user, k=rows.ROW_SIZE, exclude=set(rated))
    if not items:
        genres = list(getattr(getattr(user, "profile", None), "favourite_genres", []) or [])
        row = rows.row_top_picks(user=user, rated=rated, genres=genres)
        items = [{"movie_id": p.movie.id, "title": p.movie.title, "year": p.movie.year, "reason": p.reason,
                  "score": p.score} for p in row.picks]
    try:
        fragment_url: str | None = reverse("recommendations:rows-fragment")
    except NoReverseMatch:
        fragment_url = None
    return {"row": "top-picks", "title": "Top picks for you", "fragment_url": fragment_url, "items": items}


def online_push(*, events: Sequence[Event], version: int | None) -> int:
    """Push each affected user's refreshed list (naming the events it reflects) to their open websockets."""
    by_user: dict[int, list[str]] = {}
    for event in events:
        if event.kind != "impression":  # being shown a list changes counters, not that user's list
            by_user.setdefault(event.user_id, []).append(str(event.id))
    sent = 0
    for user_id, event_ids in by_user.items():
        try:
            payload = recommendations_payload(user_id=user_id)
        except Exception:  # noqa: BLE001 - a failed refresh must not fail the (already committed) batch
            logger.exception("could not build the live refresh for user %s", user_id)
            continue
        payload.update(version=version, event_ids=event_ids, pushed_at=time.time())
        sent += live_push_recommendations(user_id=user_id, payload=payload)
    return sent
