"""Django side of online learning: events -> ``ml_core.online`` -> checkpoint (same transaction) -> live push.

One :class:`~ml_core.online.OnlineLearningCoordinator` per process. It learns on the serving engine's
own ranker, item space and counters when a serving bundle exists (``engine.make_online_coordinator``),
otherwise on the catalog's movie ids (counters and sequences only). Every applied mini-batch is stored as an
``events.OnlineCheckpoint`` in the applying transaction; its id is the state version, published in
Redis after commit. Other processes compare that version (at most every ``ONLINE_SYNC_INTERVAL_S``)
and swap the newer state in memory, without a restart.

The push comes first: a batch commits (ratings, counters, sequences, the ranker's SGD examples queued in
the checkpoint), the affected users' lists are pushed, and only then does the ranker take its SGD step and,
when due, the held-out check; the outcome is stored as a checkpoint of its own. Until a check passes,
checkpoints publish the last checked ranker weights, so serving workers never load weights that failed it;
queued examples that a crash left behind are stepped by the next applier that loads them.
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
import redis
from django.conf import settings

from events import selectors as event_selectors
from events import services as event_services
from events.live import live_push_recommendations
from events.stream import stream_ack, stream_client, stream_enabled, stream_key, stream_loss_check, stream_read
from ml_core.interface import UserContext
from ml_core.online import Holdout, OnlineConfig, OnlineEvent, OnlineLearningCoordinator

from . import engine

logger = logging.getLogger(__name__)

VERSION_SUFFIX = "online-version"  # the published state version, next to the stream
LINGER_BLOCK_MS = 1000  # longest single blocking read while lingering (below the client's socket timeout)
_lock = threading.RLock()
_local: dict[str, Any] = {"coordinator": None, "index": None, "engine": None, "bundle": None, "checked_at": 0.0}


def consumer_name() -> str:
    """This process's name in the stream's consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


# --- the coordinator and what it learns on -------------------------------------------------------
def _loaded_engine() -> Any:
    """The serving engine if this process has loaded one (never loads it)."""
    return getattr(engine, "_engine", None)


def _engine_for_learning() -> Any:
    """The serving engine, loading it if a bundle exists; None when there is none (learn on the catalog)."""
    try:
        return engine.get_engine()
    except Exception as exc:  # noqa: BLE001 - EngineUnavailable, or a broken bundle: learn counters only
        logger.info("online learning without a serving engine: %s", exc)
        return None


def _build(eng: Any) -> tuple[OnlineLearningCoordinator, dict[int, int]]:
    """A coordinator on the engine's ranker, item space and counters, or on the catalog's movie ids."""
    config = _config()
    if eng is not None:
        coord = eng.make_online_coordinator(config)
        coord.base = f"bundle:{eng.manifest_version}"
        index = {int(m): i for i, m in enumerate(eng.movie_ids)}
        if coord.ranker is not None:
            coord.holdout = _holdout(index, coord.n_items)
        return coord, index
    from catalog.selectors import movie_list

    ids = sorted(movie_list().values_list("id", flat=True))
    coord = OnlineLearningCoordinator(n_items=len(ids), config=config, base=f"catalog:{len(ids)}")
    return coord, {movie_id: i for i, movie_id in enumerate(ids)}


def _holdout(index: dict[int, int], n_items: int) -> Holdout | None:
    """Held-out check for the ranker: a few users' last rating (sampled with a fixed seed) after the rest."""
    from catalog.selectors import ratings_as_arrays

    users, movies, times, _ = ratings_as_arrays()
    size = int(settings.ONLINE_HOLDOUT_USERS)
    if not len(users) or size <= 0:
        return None
    order = np.lexsort((times, users))
    users, movies = users[order], movies[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    eligible = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= 6 and int(movies[e - 1]) in index]
    if not eligible:
        return None
    rng = np.random.default_rng(0)
    picked = [eligible[i] for i in sorted(rng.choice(len(eligible), size=min(size, len(eligible)), replace=False))]
    contexts = [UserContext(history=[index[m] for m in movies[s : e - 1].tolist() if m in index][-200:])
                for s, e in picked]
    positives = [index[int(movies[e - 1])] for _, e in picked]
    return Holdout.build(contexts, positives, n_items, negatives=99, seed=0)


def _stale() -> bool:
    loaded = _loaded_engine()
    return (_local["coordinator"] is None or _local["engine"] is not loaded
            or (loaded is not None and _local["bundle"] is not loaded.bundle))


def _config() -> OnlineConfig:
    return OnlineConfig(learning_rate=float(settings.ONLINE_LEARNING_RATE),
                        rollback_drop=float(settings.ONLINE_ROLLBACK_DROP),
                        holdout_every=int(settings.ONLINE_HOLDOUT_EVERY))


def coordinator(*, load_engine: bool = True) -> OnlineLearningCoordinator:
    """This process's coordinator, built on first use and rebuilt when the engine or its bundle changes."""
    with _lock:
        if _stale():
            eng = _engine_for_learning() if load_engine else _loaded_engine()
            coord, index = _build(eng)
            _local.update(coordinator=coord, index=index, engine=eng, bundle=getattr(eng, "bundle", None),
                          checked_at=0.0)
            online_state_sync(force=True)
        return _local["coordinator"]


def online_reset() -> None:
    """Forget the in-memory state (after a failed transaction, or in tests); the next use reloads it."""
    with _lock:
        _local.update(coordinator=None, index=None, engine=None, bundle=None, checked_at=0.0)


def online_state_sync(*, force: bool = False, learner: bool = False) -> bool:
    """Swap in the newest published checkpoint if it is newer than ours; True when state changed.

    Serving workers call this on every request (throttled to one Redis read per ``ONLINE_SYNC_INTERVAL_S``)
    and take the checked ranker weights; the applier (``learner``) also takes steps still due their check.
    """
    with _lock:
        if _local["coordinator"] is None or (not force and _stale()):
            if _loaded_engine() is None and _local["coordinator"] is None:
                return False  # nothing served here yet: nothing to keep in sync
            coordinator(load_engine=False)
        coord = _local["coordinator"]
        now = time.monotonic()
        if not force and now - _local["checked_at"] < float(settings.ONLINE_SYNC_INTERVAL_S):
            return False
        _local["checked_at"] = now
        if not force and stream_enabled():
            try:
                published = int(stream_client().get(stream_key(VERSION_SUFFIX)) or 0)
            except Exception:  # noqa: BLE001 - Redis down: keep serving the state we have
                return False
            if published <= coord.version:
                return False
        newer_than = coord.version if coord.learner_state or not learner else coord.version - 1  # same one, all of it
        latest = event_selectors.online_checkpoint_latest(newer_than=newer_than)
        if latest is None:
            return False
        try:
            coord.load_state_bytes(bytes(latest.state), version=latest.id, learner=learner)
        except (ValueError, RuntimeError, KeyError) as exc:  # learned on another bundle: keep this one's state
            logger.warning("online checkpoint v%s not loaded: %s", latest.id, exc)
            coord.version = latest.id
            return False
        _publish_to_engine(coord)
        logger.info("online state v%s swapped in", latest.id)
        return True


def _publish_to_engine(coord: OnlineLearningCoordinator) -> None:
    """Point the serving engine at the new counters (the ranker is shared, already updated in place)."""
    loaded = _local["engine"]
    if loaded is None:
        return
    loaded.popularity.item_scores = np.log1p(coord.item_counts)  # float64: counts round-trip exactly
    loaded.bump_state_version(coord.version)


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

        rows = list(lister(user=get_user_model()(pk=user_id)).values_list("movie_id", "rated_at")[:200])
        rated = [movie_id for movie_id, _ in sorted(rows, key=lambda r: r[1])]
    ordered = dict.fromkeys(rated + event_selectors.event_recent_movie_ids(user_id=user_id))
    return list(ordered)


def _seed_users(coord: OnlineLearningCoordinator, events: Sequence[Any], index: dict[int, int]) -> None:
    """Load the stored history of users this process's coordinator has not seen yet."""
    for user_id in sorted({e.user_id for e in events}):
        if not coord.has_user(user_id):
            coord.seed_user(user_id, [index[m] for m in _stored_history(user_id) if m in index])


def _apply(events: list[Any]) -> dict[str, Any]:
    """Inside the applying transaction: update the learner, return the checkpoint to store with the events."""
    delay = float(settings.ONLINE_APPLY_DELAY_S)  # fault-injection knob for reliability tests
    if delay:
        time.sleep(delay)
    coord = coordinator()
    online_state_sync(force=True, learner=True)  # serialised by the apply lock: start from the newest committed state
    index = _local["index"]
    _seed_users(coord, events, index)
    report = coord.apply(_to_online(events, index), defer=True)  # the SGD step and check wait for the push
    return {"state": coord.state_bytes(), "report": report.as_dict()}


def _publish_version(version: int) -> None:
    if stream_enabled():
        try:
            stream_client().set(stream_key(VERSION_SUFFIX), version)
        except Exception as exc:  # noqa: BLE001 - workers also find it in the DB on their next forced sync
            logger.warning("could not publish online state v%s: %s", version, exc)


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
            _publish_version(batch.checkpoint_id)
    return batch


def online_learn_deferred() -> int | None:
    """After the push: the ranker's queued SGD step and due held-out check, stored as a new checkpoint.

    Returns the new version, or None when nothing was waiting, or another applier stored a newer state
    meanwhile (it loaded the queued examples and unchecked steps and learns them itself; ours loads its
    state on the next apply), or storing failed (the last stored state still carries the work).
    """
    with _lock:
        coord = _local["coordinator"]
        if coord is None or not coord.deferred_work:
            return None
        based_on = coord.version
        try:
            report = coord.learn_deferred()
            saved = event_services.online_checkpoint_follow(based_on=based_on, state=coord.state_bytes,
                                                            report={"deferred": report.as_dict()})
        except Exception:  # noqa: BLE001 - the batch is committed; the stored state still carries the work
            logger.exception("deferred learning after v%s not stored; the next apply reloads and repeats it",
                             based_on)
            online_reset()
            return None
        if saved is None:
            return None
        coord.version = saved.id
        _publish_to_engine(coord)
        _publish_version(saved.id)
        return saved.id


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
            batch = online_apply(event_ids=event_ids[start : start + size])
            applied += len(batch.events)
            online_push(events=batch.events, version=batch.checkpoint_id)
            online_learn_deferred()  # after the push; weights are published only once a check passed
        idle_until = time.monotonic() + linger_s
        ack_delay = float(settings.ONLINE_ACK_DELAY_S)  # fault-injection knob
        if ack_delay:
            time.sleep(ack_delay)
        stream_ack([e.entry_id for e in entries])  # applied (or already applied before): safe to ack
    return applied


def _replay_lost_stream() -> None:
    """If Redis lost the stream (restarted empty, flushed), relay the unapplied outbox rows again before
    reading, instead of leaving them to the relay's redelivery after EVENTS_REDELIVER_AFTER_S."""
    try:
        lost = stream_loss_check() is not None
    except redis.RedisError:
        return  # the read that follows fails as well, and says so
    if lost:
        relayed = event_services.event_outbox_relay()
        logger.warning("the event stream was lost; %d unapplied events relayed again from the outbox", relayed)


def online_apply_outbox(*, event_ids: Sequence[str]) -> int:
    """Without a stream (no Redis URL): apply the given outbox rows directly, then push."""
    batch = online_apply(event_ids=event_ids)
    online_push(events=batch.events, version=batch.checkpoint_id)
    online_learn_deferred()
    return len(batch.events)


# --- live push ------------------------------------------------------------------------------------------
def _engine_items(*, user: Any, k: int, exclude: set[int]) -> list[dict[str, Any]] | None:
    """The engine's list for the user without explanations (the push must be quick); None without an engine.

    The engine already leaves out the user's last HISTORY_LIMIT rated movies, so only ratings older than
    that window can come back and need room in the list.
    """
    spare = max(0, len(exclude) - engine.HISTORY_LIMIT)
    try:
        items = engine.recommend_user(user=user, user_id=user.pk, k=k + spare, explain=False)["items"]
    except Exception as exc:  # noqa: BLE001 - no bundle, or serving failed: the catalog rows stand in
        logger.info("live refresh without the engine: %s", exc)
        return None
    return [{"movie_id": int(i["movie_id"]), "title": i.get("title"), "year": i.get("year"),
             "reason": i.get("explanation") or "", "score": i.get("score")}
            for i in items if int(i["movie_id"]) not in exclude][:k]


def recommendations_payload(*, user_id: int) -> dict[str, Any]:
    """The user's refreshed "Top picks" as JSON for the live push (the page may also refetch its rows)."""
    from django.contrib.auth import get_user_model
    from django.urls import NoReverseMatch, reverse

    from . import activity, rows

    user = get_user_model().objects.get(pk=user_id)
    rated = activity.ratings_map(user=user)
    items = _engine_items(user=user, k=rows.ROW_SIZE, exclude=set(rated))
    if not items:
        genres = list(getattr(getattr(user, "profile", None), "favourite_genres", []) or [])
        row = rows.row_top_picks(user=user, rated=rated, genres=genres)
        items = [{"movie_id": p.movie.id, "title": p.movie.title, "year": p.movie.year, "reason": p.reason,
                  "score": p.score} for p in row.picks]
    try:
        fragment_url = reverse("recommendations:rows-fragment")
    except NoReverseMatch:
        fragment_url = None
    return {"row": "top-picks", "title": "Top picks for you", "fragment_url": fragment_url, "items": items}


def online_push(*, events: Sequence[Any], version: int | None) -> int:
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
