"""The live-push helper: send a user's refreshed recommendations to their open pages (group ``user-<id>``)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "recommendations.refresh"  # handled by RecommendationsConsumer.recommendations_refresh


def user_group(user_id: int) -> str:
    """The Channels group of one user's open websockets."""
    return f"user-{int(user_id)}"


def live_push_recommendations(*, user_id: int, payload: dict[str, Any]) -> bool:
    """Push ``payload`` (JSON-serialisable: items and/or a rendered ``html`` fragment) to that user only.

    Returns False (and logs) when the channel layer is unreachable: a missed push only delays the
    refresh until the next page load, it never loses the event.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": MESSAGE_TYPE, "payload": payload})
    except Exception as exc:  # noqa: BLE001 - any layer/transport failure is non-fatal here
        logger.warning("live push to user %s failed: %s", user_id, exc)
        return False
    return True
