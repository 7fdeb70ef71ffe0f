"""The stream consumer: mini-batches read from the Redis stream, applied exactly once, pushed, learned, acked.

Without Redis (the embedded default) the outbox rows are applied directly (:func:`online_apply_outbox`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

import redis
from django.conf import settings

from events.services import event_outbox_relay
from events.stream import stream_ack, stream_loss_check, stream_read

from .apply import online_apply, online_learn_deferred
from .push import online_push

logger = logging.getLogger(__name__)

CONSUME_SCHEDULED = "consume-scheduled"  # flag next to the stream: a consume run is queued or reading
CONSUME_FLAG_TTL_MS = 60_000
LINGER_BLOCK_MS = 1000  # longest single blocking read while lingering (below the client's socket timeout)


def consumer_name() -> str:
    """This process's name in the stream's consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


def online_consume_stream(*, consumer: str | None = None, batch_size: int | None = None,
                          max_batches: int = 1000, linger_s: float = 0.0) -> int:
    """Drain the stream in mini-batches: read (reclaiming dead consumers' entries), apply, push, check, ack.

    With ``linger_s`` the consumer then keeps waiting on the stream (blocking reads, no polling) until it has
    been idle that long, so events that follow soon are applied without scheduling another run.
    """
    name = consumer or consumer_name()
    size = batch_size or int(settings.ONLINE_BATCH_SIZE)
    _replay_lost_stream()
    applied = batches = 0
    idle_until = time.monotonic() + linger_s
    while batches < max_batches:
        wait_ms = int((idle_until - time.monotonic()) * 1000)
        try:  # entries hold 1-100 events each
            entries = stream_read(consumer=name, count=max(1, size // 10),
                                  block_ms=min(wait_ms, LINGER_BLOCK_MS) if wait_ms > 0 else None)
        except redis.RedisError as exc:
            if not batches:
                raise
            logger.warning("stream read failed, consumer %s stops here: %s", name, exc)
            break
        if not entries:
            if wait_ms > 0:
                continue
            break
        batches += 1
        event_ids = [event_id for entry in entries for event_id in entry.event_ids]
        for start in range(0, len(event_ids), size):  # mini-batches of at most `size` events
            applied += _apply_push_learn(event_ids[start : start + size])
        idle_until = time.monotonic() + linger_s
        stream_ack([e.entry_id for e in entries])  # applied (or already applied before): safe to ack
    return applied


def _apply_push_learn(event_ids: Sequence[str]) -> int:
    """One mini-batch: applied and committed, the affected users' lists pushed, then the ranker's step."""
    batch = online_apply(event_ids=event_ids)
    online_push(events=batch.events, version=batch.result)
    online_learn_deferred()  # after the push; weights are published only once a check passed
    return len(batch.events)


def _replay_lost_stream() -> None:
    """If Redis lost the stream (restarted empty, flushed), relay the unapplied outbox rows again before
    reading, instead of leaving them to the relay's redelivery after EVENTS_REDELIVER_AFTER_S."""
    try:
        lost = stream_loss_check() is not None
    except redis.RedisError:
        return  # the read that follows fails as well, and says so
    if lost:
        relayed = event_outbox_relay()
        logger.warning("the event stream was lost; %d unapplied events relayed again from the outbox", relayed)


def online_apply_outbox(*, event_ids: Sequence[str]) -> int:
    """Without a stream (no Redis URL): apply the given outbox rows directly, then push and learn."""
    return _apply_push_learn(event_ids)
