"""The Redis Stream between the outbox and the online learner: append, read in a consumer group, reclaim, ack.

Entries carry only event ids (up to ``IDS_PER_ENTRY`` per entry, so a 500-event batch is 5 XADDs, not
500); the rows in PostgreSQL are the source of truth. Reads first reclaim entries another consumer left pending for longer than
``EVENTS_RECLAIM_IDLE_MS`` (XAUTOCLAIM: that consumer died mid-batch), then read new ones.
A marker key next to the stream tells the relay that Redis lost the stream (``stream_loss_check``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

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
    return settings.EVENTS_STREAM


def stream_group() -> str:
    return settings.EVENTS_STREAM_GROUP


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


EPOCH_SUFFIX = "epoch"  # marker next to the stream: "<run id>:<time>" of the Redis that first held it
LOSS_MARGIN_S = 5.0  # clock skew allowed between Redis and the app servers when replaying a lost stream

# KEYS: marker. The first append into a Redis that lacks the marker (a new one, or one that lost its
# data) records that server's run id and the time.
_MARK = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  redis.call('SET', KEYS[1], run_id .. ':' .. redis.call('TIME')[1])
end
return 0
"""
# KEYS: marker; ARGV: run id. The loss is handled: mark it checked, unless Redis restarted meanwhile.
_CHECKED = """
if string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1] .. ':checked')
end
return 0
"""


@dataclass(frozen=True)
class StreamLoss:
    """Redis may have lost stream entries: those relayed before ``before`` (unix time) and not applied."""

    run_id: str
    before: float


def stream_loss_check() -> StreamLoss | None:
    """Whether this Redis may have lost entries relayed earlier (a restart without persistence, a flush,
    a failover to an empty replica): the marker is missing, or was set by an append into this very server
    and not checked yet. None when the marker was checked on this server, or persisted from before its
    start (the stream persisted with it). Raises on Redis errors.

    ``events.services.event_outbox_relay`` then relays every unapplied outbox row relayed before the loss
    again at once (not after EVENTS_REDELIVER_AFTER_S) and calls ``stream_loss_handled``."""
    client = stream_client()
    pipe = client.pipeline(transaction=False)
    pipe.get(stream_key(EPOCH_SUFFIX))
    pipe.info("server")
    marker, info = pipe.execute()
    run_id = str(info["run_id"])
    if marker is None:  # nothing appended since the data was lost: every relayed row may be gone
        return StreamLoss(run_id, time.time() + LOSS_MARGIN_S)
    marked_by, _, marked_at = marker.partition(":")
    if marked_by != run_id:  # the marker persisted across a restart, and so did the stream
        client.eval(_CHECKED, 1, stream_key(EPOCH_SUFFIX), run_id)
        return None
    if marked_at == "checked":
        return None
    return StreamLoss(run_id, float(marked_at) + LOSS_MARGIN_S)


def stream_loss_handled(loss: StreamLoss) -> None:
    """The rows a loss concerned were relayed again: stop reporting it (unless Redis restarted since)."""
    stream_client().eval(_CHECKED, 1, stream_key(EPOCH_SUFFIX), loss.run_id)


def stream_append(event_ids: Sequence[str]) -> int:
    """XADD the event ids (chunked) in one pipeline; returns how many entries were added. Raises on Redis errors."""
    pipe = stream_client().pipeline(transaction=False)
    chunks = [event_ids[i : i + IDS_PER_ENTRY] for i in range(0, len(event_ids), IDS_PER_ENTRY)]
    for chunk in chunks:
        pipe.xadd(stream_name(), {"event_ids": ",".join(chunk)}, maxlen=STREAM_MAXLEN, approximate=True)
    if chunks:
        pipe.eval(_MARK, 1, stream_key(EPOCH_SUFFIX))  # same round trip: notes a Redis that lost the stream
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
    idle_ms = int(settings.EVENTS_RECLAIM_IDLE_MS)
    _, claimed, deleted = client.xautoclaim(stream_name(), stream_group(), consumer, min_idle_time=idle_ms,
                                            start_id="0-0", count=count)
    if deleted:
        client.xack(stream_name(), stream_group(), *deleted)
    entries = _entries(claimed)
    if entries:
        logger.info("reclaimed %d pending stream entries for %s", len(entries), consumer)
        return entries
    reply = client.xreadgroup(stream_group(), consumer, {stream_name(): ">"}, count=count, block=block_ms)
    # our clients speak RESP2, where the reply is [[stream, entries]] (the dict shapes are RESP3's)
    return _entries(cast(list[list[Any]], reply)[0][1]) if reply else []


def stream_ack(entry_ids: Sequence[str]) -> None:
    """Acknowledge entries whose events are applied (after the applying transaction committed)."""
    if entry_ids:
        stream_client().xack(stream_name(), stream_group(), *entry_ids)


def stream_pending_count() -> int:
    """Entries delivered but not yet acknowledged, across consumers."""
    stream_ensure_group()
    return int(stream_client().xpending(stream_name(), stream_group())["pending"])
