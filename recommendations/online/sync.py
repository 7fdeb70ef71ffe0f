"""The published online state version, and serving workers swapping the newest checkpoint into their engine.

The applier publishes each stored checkpoint's id under ``VERSION_KEY`` in the shared cache (Redis when
configured). The adapter (``recommendations/serving.py``) reads that key in the same round trip as the
bundle and weights versions, once per request, and calls :func:`online_state_sync` with it: a version newer
than the engine's loads the checkpoint from the database and hands its published part (counters and checked
ranker weights) to the engine. Without a published version (per-process cache, or Redis lost the key) the
database is asked at most every ``ONLINE_SYNC_INTERVAL_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

from ml_core.serving import Engine, read_published_state

from .checkpoints import checkpoint_latest

logger = logging.getLogger(__name__)

VERSION_KEY = "apex:online:state-version"
_lock = threading.Lock()
_seen: dict[str, Any] = {"refused": 0, "checked_at": 0.0}  # a checkpoint from another bundle; the last DB check


def publish_version(version: int) -> None:
    """Tell every worker that online state ``version`` is stored (the fail-soft cache logs a Redis outage;
    workers then find the checkpoint in the database on their next throttled check)."""
    cache.set(VERSION_KEY, int(version), None)


def online_state_sync(engine: Engine, *, published: int | None) -> bool:
    """Swap the newest stored online state into ``engine`` if it is newer than the one it serves; True if so."""
    known = max(engine.online_version, _seen["refused"])
    if published is not None:
        if int(published) <= known:
            return False
    else:
        now = time.monotonic()
        if now - _seen["checked_at"] < float(settings.ONLINE_SYNC_INTERVAL_S):
            return False
        _seen["checked_at"] = now
    with _lock:
        latest = checkpoint_latest(newer_than=max(engine.online_version, int(_seen["refused"])))
        if latest is None:
            return False
        try:
            engine.apply_online_state(read_published_state(bytes(latest.state), version=latest.id))
        except (ValueError, KeyError) as exc:  # learned on another bundle (or the catalogue): not for this engine
            logger.info("online state v%s not served here: %s", latest.id, exc)
            _seen["refused"] = latest.id
            return False
    logger.info("online state v%s swapped in", latest.id)
    return True


def sync_reset() -> None:
    """Forget what this process refused or checked (tests; after the bundle changed)."""
    _seen.update(refused=0, checked_at=0.0)
