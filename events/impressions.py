"""Served impressions: one XADD to a Redis Stream per served list, stored as Event rows from it by beat.

The recommendation request hands its list (movie ids, propensities, positions, policy version, request id,
served-at time) to ``events.services.impression_enqueue``: one round trip to Redis instead of a Celery
task publish.
``impressions_store`` (beat, ``events.tasks.store_impressions``) reads the stream in a consumer group,
stores each list through ``impression_log_batch`` (idempotent by request id and position, so a list
delivered twice is stored once) and acknowledges it only after the rows are committed; a list a dead
storer left pending is reclaimed after ``RECLAIM_IDLE_MS``. Without a Redis URL, or when the
XADD fails, the list is stored in the request itself, so it is never dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from typing import Any, cast

import redis
from django.core.exceptions import ValidationError

from accounts.selectors import user_get

from .services import impression_log_batch, impressions_stream
from .stream import stream_client, stream_enabled

logger = logging.getLogger(__name__)

GROUP = "apex-impressions"
RECLAIM_IDLE_MS = 60_000


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(impressions_stream(), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _store(fields: dict[str, Any]) -> int:
    user = user_get(user_id=int(fields["user_id"]))
    if user is None:  # the account was deleted since; so were its events
        return 0
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    return len(impression_log_batch(
        user=user, movie_ids=ints(fields["movie_ids"]),
        propensities=[float(x) for x in fields["propensities"].split(",") if x],
        positions=ints(fields["positions"]), policy_version=fields["policy_version"],
        request_id=fields["request_id"], served_at=dt.datetime.fromisoformat(fields["served_at"]),
        arm_id=int(fields["arm_id"]) if fields.get("arm_id") else None))


def impressions_store(*, limit: int = 5_000, batch: int = 200) -> int:
    """Store queued lists (reclaimed ones first) until the stream is drained or ``limit`` lists; returns
    the number of impressions stored. A list that fails validation (e.g. a movie deleted since) is logged and
    dropped; a database error leaves it pending, to be reclaimed by a later run."""
    if not stream_enabled():
        return 0
    try:
        return _store_queued(stream_client(), limit=limit, batch=batch)
    except redis.RedisError as exc:  # Redis down: the lists wait in the stream (the request stored any it could not add)
        logger.warning("impression stream unavailable, storing later: %s", exc)
        return 0


def _store_queued(client: redis.Redis, *, limit: int, batch: int) -> int:
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    stored = handled = 0
    reclaim = True
    while handled < limit:
        if reclaim:
            _, entries, deleted = client.xautoclaim(impressions_stream(), GROUP, consumer,
                                                    min_idle_time=RECLAIM_IDLE_MS, start_id="0-0", count=batch)
            if deleted:
                client.xack(impressions_stream(), GROUP, *deleted)
            reclaim = bool(entries)
        if not reclaim:
            reply = client.xreadgroup(GROUP, consumer, {impressions_stream(): ">"}, count=batch)
            # our clients speak RESP2, where the reply is [[stream, entries]] (the dict shapes are RESP3's)
            entries = cast(list[list[Any]], reply)[0][1] if reply else []
        if not entries:
            break
        done = []
        try:
            for entry_id, fields in entries:
                handled += 1
                if fields:
                    try:
                        stored += _store(fields)
                    except ValidationError as exc:
                        logger.error("impression list %s dropped: %s", fields.get("request_id"), exc)
                done.append(entry_id)
        finally:  # acknowledge what is stored even when a later list failed (that one stays pending)
            if done:
                pipe = client.pipeline(transaction=False)
                pipe.xack(impressions_stream(), GROUP, *done)
                pipe.xdel(impressions_stream(), *done)
                pipe.execute()
    return stored
