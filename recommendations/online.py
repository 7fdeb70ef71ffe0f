"""Django side of online learning: events -> ``ml_core.online`` -> checkpoint (same transaction) -> live push.

One :class:`~ml_core.online.OnlineLearningCoordinator` per process. It learns on the serving
engine's own ranker and vocabulary when an engine is loaded (see :func:`_engine_parts`), otherwise on
the catalog's movie ids (counters and sequences only). Every applied mini-batch is stored as an
``events.OnlineCheckpoint`` in the applying transaction; its id is the state version, published in
Redis after commit. Other processes compare that version (at most every ``ONLINE_SYNC_INTERVAL_S``)
and swap the newer state in memory, without a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings

from events import selectors as event_selectors
from events import services as event_services
from events.live import live_push_recommendations
from events.stream import stream_ack, stream_client, stream_enabled, stream_key, stream_read
from ml_core.online import OnlineConfig, OnlineEvent, OnlineLearningCoordinator

from . import engine

logger = logging.getLogger(__name__)

VERSION_SUFFIX = "online-version"  # the published state version, next to the stream
_lock = threading.RLock()
_local: dict[str, Any] = {"coordinator": None, "index": None, "engine": None, "checked_at": 0.0}


def consumer_name() -> str:
    """This process's name in the stream's consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


# --- the coordinator and what it learns on -------------------------------------------------------
def _engine_parts() -> tuple[Any, dict[int, int], Any, Any]:
    """(engine or None, movie id -> item index, ranker or None, initial item counts or None)."""
    loaded = getattr(engine, "_engine", None)
    raw_ids = getattr(loaded, "item_raw_ids", None) if loaded is not None else None
    if loaded is not None and raw_ids is not None:
        index = {int(r): i for i, r in enumerate(raw_ids)}
        popularity = getattr(loaded, "popularity", None)
        scores = getattr(popularity, "item_scores", None)
        counts = None if scores is None else np.expm1(scores)
        return loaded, index, getattr(loaded, "ranker", None), counts
    from catalog.selectors import movie_list

    ids = list(movie_list(sort="title").order_by("id").values_list("id", flat=True))
    return None, {movie_id: i for i, movie_id in enumerate(ids)}, None, None


def _config() -> OnlineConfig:
    return OnlineConfig(learning_rate=float(getattr(settings, "ONLINE_LEARNING_RATE", 1e-3)),
                        rollback_drop=float(getattr(settings, "ONLINE_ROLLBACK_DROP", 0.05)))


def coordinator() -> OnlineLearningCoordinator:
    """This process's coordinator, built on first use (and rebuilt when the engine is reloaded)."""
    with _lock:
        loaded = getattr(engine, "_engine", None)
        if _local["coordinator"] is None or _local["engine"] is not loaded:
            eng, index, ranker, counts = _engine_parts()
            _local.update(coordinator=OnlineLearningCoordinator(
                n_items=len(index), ranker=ranker, config=_config(), item_counts=counts),
                index=index, engine=eng, base_counts=counts)
            online_state_sync(force=True)
        return _local["coordinator"]


def online_reset() -> None:
    """Forget the in-memory state (after a failed transaction, or in tests); the next use reloads it."""
    with _lock:
        _local.update(coordinator=None, index=None, engine=None, checked_at=0.0)


def online_state_sync(*, force: bool = False) -> bool:
    """Swap in the newest published checkpoint if it is newer than ours; True when state changed."""
    with _lock:
        coord = _local["coordinator"]
        if coord is None:
            return False
        now = time.monotonic()
        interval = float(getattr(settings, "ONLINE_SYNC_INTERVAL_S", 0.5))
        if not force and now - _local["checked_at"] < interval:
            return False
        _local["checked_at"] = now
        if not force and stream_enabled():
            try:
                published = int(stream_client().get(stream_key(VERSION_SUFFIX)) or 0)
            except Exception:  # noqa: BLE001 - Redis down: keep serving the state we have
                return False
            if published <= coord.version:
                return False
        latest = event_selectors.online_checkpoint_latest(newer_than=coord.version)
        if latest is None:
            return False
        try:
            coord.load_state_bytes(bytes(latest.state), version=latest.id)
        except ValueError as exc:  # a checkpoint for another engine/vocabulary: start from this engine's state
            logger.warning("online checkpoint v%s not loaded: %s", latest.id, exc)
            coord.version = latest.id
            return False
        _publish_to_engine(coord)
        logger.info("online state v%s swapped in", latest.id)
        return True


def _publish_to_engine(coord: OnlineLearningCoordinator) -> None:
    """Point the serving engine at the new counters (the ranker is shared, already updated in place)."""
    loaded = _local["engine"]
    popularity = getattr(loaded, "popularity", None)
    if popularity is not None and hasattr(popularity, "item_scores"):
        popularity.item_scores = coord.popularity_scores()
    bump = getattr(loaded, "bump_state_version", None)
    if callable(bump):
        bump(coord.version)


# --- applying a batch ---------------------------------------------------------------------------------
def _to_online(events: Sequence[Any], index: dict[int, int]) -> list[OnlineEvent]:
    return [OnlineEvent(event_id=str(e.id), user=e.user_id, item=index.get(e.movie_id, -1), kind=e.kind,
                        value=e.value, time=e.occurred_at.timestamp(), propensity=e.propensity, position=e.position)
            for e in events]


def _stored_history(user_id: int) -> list[int]:
    """The user's stored history, oldest first: catalog ratings, then applied events (last occurrence wins)."""
    from catalog import selectors as catalog

    rated: list[int] = []
    lister = getattr(catalog, "rating_list_for_user", None)
    if lister is not None:
        from django.contrib.auth import get_user_model

        rows = lister(user=get_user_model()(pk=user_id))
        rated = [r.movie_id for r in sorted(rows, key=lambda r: r.rated_at)]
    ordered = dict.fromkeys(rated + event_selectors.event_recent_movie_ids(user_id=user_id))
    return list(ordered)


def _seed_users(coord: OnlineLearningCoordinator, events: Sequence[Any], index: dict[int, int]) -> None:
    """Load the stored history of users this process's coordinator has not seen yet."""
    for user_id in sorted({e.user_id for e in events}):
        if not coord.has_user(user_id):
            coord.seed_user(user_id, [index[m] for m in _stored_history(user_id) if m in index])


def _apply(events: list[Any]) -> dict[str, Any]:
    """Inside the applying transaction: update the learner, return the checkpoint to store with the events."""
    delay = float(getattr(settings, "ONLINE_APPLY_DELAY_S", 0.0))  # fault-injection knob for reliability tests
    if delay:
        time.sleep(delay)
    coord = coordinator()
    online_state_sync(force=True)  # serialised by the apply lock: start from the newest committed state
    index = _local["index"]
    _seed_users(coord, events, index)
    report = coord.apply(_to_online(events, index))
    return {"state": coord.state_bytes(), "report": report.as_dict()}


def online_apply(*, event_ids: Sequence[str]) -> event_services.AppliedBatch:
    """Apply events exactly once and publish the new state version; the in-memory state rolls back on failure."""
    with _lock:
        try:
            batch = event_services.event_apply_batch(event_ids=event_ids, apply=_apply)
        except Exception:
            online_reset()
            raise
        if batch.checkpoint_id is not None:
            coordinator().version = batch.checkpoint_id
            _publish_to_engine(_local["coordinator"])
            if stream_enabled():
                try:
                    stream_client().set(stream_key(VERSION_SUFFIX), batch.checkpoint_id)
                except Exception as exc:  # noqa: BLE001 - workers also find it in the DB on their next forced sync
                    logger.warning("could not publish online state v%s: %s", batch.checkpoint_id, exc)
    return batch


def online_consume_stream(*, consumer: str | None = None, batch_size: int | None = None,
                          max_batches: int = 1000) -> int:
    """Drain the stream in mini-batches: read (reclaiming dead consumers' entries), apply, ack, push."""
    name = consumer or consumer_name()
    size = batch_size or int(getattr(settings, "ONLINE_BATCH_SIZE", 256))
    applied = 0
    for _ in range(max_batches):
        entries = stream_read(consumer=name, count=size)
        if not entries:
            break
        batch = online_apply(event_ids=[e.event_id for e in entries])
        ack_delay = float(getattr(settings, "ONLINE_ACK_DELAY_S", 0.0))  # fault-injection knob
        if ack_delay:
            time.sleep(ack_delay)
        stream_ack([e.entry_id for e in entries])  # applied (or already applied before): safe to ack
        applied += len(batch.events)
        online_push(user_ids=sorted({e.user_id for e in batch.events}), version=batch.checkpoint_id)
    return applied


def online_apply_outbox(*, event_ids: Sequence[str]) -> int:
    """Without a stream (no Redis URL): apply the given outbox rows directly, then push."""
    batch = online_apply(event_ids=event_ids)
    online_push(user_ids=sorted({e.user_id for e in batch.events}), version=batch.checkpoint_id)
    return len(batch.events)


# --- live push ------------------------------------------------------------------------------------------
def recommendations_payload(*, user_id: int) -> dict[str, Any]:
    """The user's refreshed "Top picks" as JSON for the live push (the page may also refetch its rows)."""
    from django.contrib.auth import get_user_model
    from django.urls import NoReverseMatch, reverse

    from . import activity, rows

    user = get_user_model().objects.get(pk=user_id)
    profile_genres = list(getattr(getattr(user, "profile", None), "favourite_genres", []) or [])
    row = rows.row_top_picks(user=user, rated=activity.ratings_map(user=user), genres=profile_genres)
    try:
        fragment_url = reverse("recommendations:rows-fragment")
    except NoReverseMatch:
        fragment_url = None
    return {"row": row.key, "title": row.title, "fragment_url": fragment_url,
            "items": [{"movie_id": p.movie.id, "title": p.movie.title, "year": p.movie.year, "reason": p.reason,
                       "score": p.score} for p in row.picks]}


def online_push(*, user_ids: Sequence[int], version: int | None) -> int:
    """Push each user's refreshed list to their open websockets; returns how many pushes were sent."""
    sent = 0
    for user_id in user_ids:
        try:
            payload = recommendations_payload(user_id=user_id)
        except Exception:  # noqa: BLE001 - a failed refresh must not fail the (already committed) batch
            logger.exception("could not build the live refresh for user %s", user_id)
            continue
        payload["version"] = version
        payload["pushed_at"] = time.time()
        sent += live_push_recommendations(user_id=user_id, payload=payload)
    return sent


def online_after_commit_trigger(*, event_ids: Sequence[str], relayed: bool) -> None:
    """Signal receiver body: schedule consumption (stream) or apply in-process (no Redis)."""
    from . import tasks

    if not stream_enabled():
        tasks.apply_outbox_events.apply(kwargs={"event_ids": list(event_ids)})  # no broker: run it here, now
        return
    if not relayed:
        return  # left in the outbox; the beat relay appends and schedules consumption when Redis is back
    try:
        if stream_client().set(stream_key(tasks.CONSUME_SCHEDULED), "1", nx=True, px=60_000):
            tasks.consume_event_stream.apply_async(retry=False)
    except Exception as exc:  # noqa: BLE001 - broker down: the beat task consumes later
        logger.warning("could not schedule stream consumption: %s", exc)
