"""The live-push helper: send a user's refreshed recommendations to their open pages (group ``user-<id>``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "recommendations.refresh"  # handled by RecommendationsConsumer.recommendations_refresh
PUSH_TIMEOUT_S = 5.0
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def user_group(user_id: int) -> str:
    """The Channels group of one user's open websockets."""
    return f"user-{int(user_id)}"


def _push_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop thread per process, so the Redis layer keeps its connections between pushes."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="live-push", daemon=True).start()
        return _loop


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def live_push_recommendations(*, user_id: int, payload: dict[str, Any]) -> bool:
    """Push ``payload`` (JSON-serialisable: items and/or a rendered ``html`` fragment) to that user only.

    Returns False (and logs) when the channel layer is unreachable: a missed push only delays the
    refresh until the next page load, it never loses the event.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    message = {"type": MESSAGE_TYPE, "payload": payload}
    try:
        if _in_event_loop() or type(layer).__name__ == "InMemoryChannelLayer":
            # Called from async code (via sync_to_async), or a layer bound to the caller's loop (tests, dev).
            async_to_sync(layer.group_send)(user_group(user_id), message)
        else:
            future = asyncio.run_coroutine_threadsafe(layer.group_send(user_group(user_id), message), _push_loop())
            future.result(timeout=PUSH_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any layer/transport failure is non-fatal here
        logger.warning("live push to user %s failed: %s", user_id, exc)
        return False
    return True
