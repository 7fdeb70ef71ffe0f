"""The Redis Stream between the outbox and the online learner: append, read in a consumer group, reclaim, ack.

Entries carry only event ids (up to ``IDS_PER_ENTRY`` per entry, so a 500-event batch is 5 XADDs, not
500); the rows in PostgreSQL are the source of truth. Reads first reclaim entries another consumer left pending for longer than
``EVENTS_RECLAIM_IDLE_MS`` (XAUTOCLAIM: that consumer died mid-batch), then read new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 1_000_000  # approximate trim; acked entries older than this are dropped
IDS_PER_ENTRY = 100


@dataclass(frozen=True)
class StreamEntry:
    """One stream entry: its Redis id and the events it points at."""

    entry_id: str
    event_ids: list[str]


def stream_name() -> str:
    return getattr(settings, "EVENTS_STREAM", "apex:events")


def stream_group() -> str:
    return getattr(settings, "EVENTS_STREAM_GROUP", "apex-online")


def stream_key(suffix: str) -> str:
    """A Redis key that belongs to this stream (so separate streams never share flags)."""
    return f"{stream_name()}:{suffix}"


def stream_enabled() -> bool:
    """True when a Redis URL is configured (otherwise the outbox is applied in-process)."""
    return bool(settings.REDIS_URL)


@lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=5, decode_responses=True)


def stream_client() -> redis.Redis:
    """A Redis client for the configured URL (fails fast when Redis is down)."""
    return _client(settings.REDIS_URL)


def stream_append(event_ids: Sequence[str]) -> int:
    """XADD the event ids (chunked) in one pipeline; returns how many entries were added. Raises on Redis errors."""
    pipe = stream_client().pipeline(transaction=False)
    chunks = [event_ids[i : i + IDS_PER_ENTRY] for i in range(0, len(event_ids), IDS_PER_ENTRY)]
    for chunk in chunks:
        pipe.xadd(stream_name(), {"event_ids": ",".join(chunk)}, maxlen=STREAM_MAXLEN, approximate=True)
    if chunks:
        pipe.execute()
    return len(chunks)


def stream_ensure_group() -> None:
    """Create the consumer group (and the stream) if needed; reading from the start so nothing is skipped."""
    try:
        stream_client().xgroup_create(stream_name(), stream_group(), id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _entries(raw: Sequence) -> list[StreamEntry]:
    found = []
    for entry_id, fields in raw:
        if not fields:  # deleted/trimmed entry still in the PEL
            continue
        found.append(StreamEntry(entry_id, fields["event_ids"].split(",")))
    return found


def stream_read(*, consumer: str, count: int, block_ms: int | None = None) -> list[StreamEntry]:
    """Up to ``count`` entries (of up to IDS_PER_ENTRY events each) for this consumer: reclaimed
    dead-consumer entries first, then new ones."""
    stream_ensure_group()
    client = stream_client()
    idle_ms = int(getattr(settings, "EVENTS_RECLAIM_IDLE_MS", 30_000))
    _, claimed, deleted = client.xautoclaim(stream_name(), stream_group(), consumer, min_idle_time=idle_ms,
                                            start_id="0-0", count=count)
    if deleted:
        client.xack(stream_name(), stream_group(), *deleted)
    entries = _entries(claimed)
    if entries:
        logger.info("reclaimed %d pending stream entries for %s", len(entries), consumer)
        return entries
    reply = client.xreadgroup(stream_group(), consumer, {stream_name(): ">"}, count=count, block=block_ms)
    return _entries(reply[0][1]) if reply else []


def stream_ack(entry_ids: Sequence[str]) -> None:
    """Acknowledge entries whose events are applied (after the applying transaction committed)."""
    if entry_ids:
        stream_client().xack(stream_name(), stream_group(), *entry_ids)


def stream_pending_count() -> int:
    """Entries delivered but not yet acknowledged, across consumers."""
    stream_ensure_group()
    return int(stream_client().xpending(stream_name(), stream_group())["pending"])
