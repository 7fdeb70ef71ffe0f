"""Event writes: record (idempotent, durable outbox row), relay to the stream after commit, apply exactly once."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.module_loading import import_string

from catalog.models import Movie
from catalog.selectors import movie_list
from catalog.services import rating_upsert, time_window_problem

from .models import Event
from .signals import interaction_recorded
from .stream import (
    STREAM_MAXLEN,
    StreamLoss,
    stream_append,
    stream_client,
    stream_enabled,
    stream_loss_check,
    stream_loss_handled,
)

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

logger = logging.getLogger(__name__)

Kind = Event.Kind
RELAY_BATCH = 500
COPY_MIN_ROWS = 20  # from this many rows, COPY (no ON CONFLICT) beats one INSERT statement on PostgreSQL
APPLY_LOCK_ID = 0x41504558  # 'APEX': advisory lock held while a batch is applied


@dataclass(frozen=True)
class EventInput:
    """One validated event as the API (or another app) hands it over (the movie is known to exist)."""

    movie_id: int
    kind: str
    idempotency_key: str
    value: float | None = None
    occurred_at: dt.datetime | None = None
    propensity: float | None = None
    position: int | None = None
    policy_version: str = ""
    request_id: str = ""
    external_user: str = ""
    arm_id: int | None = None  # the experiment arm that served it (impressions); others: the member's current arm


def event_value_validate(*, kind: str, value: float | None, propensity: float | None) -> float | None:
    """The stored value for a kind, or ValidationError naming the field (ratings 0.5-5 in half steps)."""
    if kind not in Kind.values:
        raise ValidationError({"kind": f"unknown kind {kind!r}; expected one of {', '.join(Kind.values)}"})
    if kind == Kind.RATING:
        if value is None:
            raise ValidationError({"value": "a rating needs a value (0.5 to 5 in half steps)"})
        if not 0.5 <= value <= 5.0 or value * 2 != int(value * 2):
            raise ValidationError({"value": f"rating must be 0.5 to 5 in half steps, got {value}"})
    elif kind == Kind.WATCH:
        value = 1.0 if value is None else value
        if not 0.0 <= value <= 1.0:
            raise ValidationError({"value": f"watch value is the fraction watched, 0 to 1; got {value}"})
    elif kind == Kind.WATCHLIST:
        value = 1.0 if value is None else value
        if value not in (0.0, 1.0):
            raise ValidationError({"value": f"watchlist value is 1 (add) or 0 (remove); got {value}"})
    elif value is not None:
        raise ValidationError({"value": f"{kind} events carry no value"})
    if kind == Kind.IMPRESSION:
        if propensity is None or not 0.0 < propensity <= 1.0:
            raise ValidationError({"propensity": "impressions need the serving policy's propensity in (0, 1]"})
    elif propensity is not None:
        raise ValidationError({"propensity": "only impressions carry a propensity"})
    return value


def event_time_validate(*, occurred_at: dt.datetime | None, now: dt.datetime | None = None) -> None:
    """ValidationError naming ``occurred_at`` when it is naive or outside the accepted window (None: now, fine)."""
    if occurred_at is None:
        return
    if timezone.is_naive(occurred_at):
        raise ValidationError({"occurred_at": "occurred_at must include a timezone"})
    problem = time_window_problem(occurred_at, now=now)
    if problem:
        raise ValidationError({"occurred_at": f"occurred_at {problem}"})


class IdempotencyConflict(ValidationError):
    """Idempotency keys already stored with different event fields (a replay must send the same body)."""

    def __init__(self, *, positions: list[int], keys: list[str]) -> None:
        self.positions, self.conflicting_keys = positions, keys
        super().__init__({"idempotency_key": f"already used for a different event: {', '.join(map(repr, keys))}"})


def event_body_hash(item: EventInput) -> str:
    """SHA-256 of the fields that make the event (all but its key); values as stored, times in UTC."""
    value = event_value_validate(kind=item.kind, value=item.value, propensity=item.propensity)
    occurred = item.occurred_at
    if occurred is not None and timezone.is_aware(occurred):
        occurred = occurred.astimezone(dt.UTC)
    fields = [item.movie_id, item.kind, None if value is None else float(value), occurred.isoformat() if occurred else None,
              None if item.propensity is None else float(item.propensity), item.position,
              item.policy_version, item.request_id, item.external_user]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def _build(*, user: User, item: EventInput, api_key: Any, now: dt.datetime) -> Event:
    value = event_value_validate(kind=item.kind, value=item.value, propensity=item.propensity)
    event_time_validate(occurred_at=item.occurred_at, now=now)
    return Event(user=user, movie_id=item.movie_id, kind=item.kind, value=value, idempotency_key=item.idempotency_key,
                 body_hash=event_body_hash(item), api_key=api_key, external_user=item.external_user,
                 propensity=item.propensity, position=item.position, policy_version=item.policy_version,
                 request_id=item.request_id, arm_id=item.arm_id, occurred_at=item.occurred_at or now)


@functools.cache
def _arm_resolver(path: str) -> Callable[[int], int | None]:
    return cast(Callable[[int], int | None], import_string(path))


def _member_arm(user: User) -> int | None:
    """The member's arm in the running experiment, from the callable settings.EVENTS_ARM_RESOLVER names
    (experiments' bucketing, which sits above events); None without one, or when it fails."""
    path = getattr(settings, "EVENTS_ARM_RESOLVER", "")
    if not path:
        return None
    try:
        return _arm_resolver(path)(user.pk)
    except Exception:  # noqa: BLE001 - an experiment lookup must never lose an event
        logger.exception("experiment arm lookup failed; the events are stored without one")
        return None


def _announce(event_ids: list[str], user_ids: list[int]) -> None:
    """After commit: append to the stream, then tell the listeners.

    Rows were stored with ``relayed_at`` set (saving an UPDATE and a commit per request); if the XADD
    fails they are put back to NULL for the beat relay. Should the process die between the commit and
    the XADD, the rows look relayed but stay unapplied, and the relay's stale scan appends them again.
    """
    relayed = True
    if stream_enabled():
        try:
            stream_append(event_ids)
        except redis.RedisError as exc:
            logger.warning("stream unavailable, %d events stay in the outbox: %s", len(event_ids), exc)
            Event.objects.filter(id__in=event_ids).update(relayed_at=None)
            relayed = False
    interaction_recorded.send(sender=Event, event_ids=event_ids, user_ids=sorted(set(user_ids)), relayed=relayed)


def _insert(events: list[Event]) -> None:
    """INSERT the rows; on PostgreSQL with COPY, several times faster than bulk_create for large batches."""
    if connection.vendor != "postgresql" or len(events) < COPY_MIN_ROWS:
        Event.objects.bulk_create(events)
        return
    fields = Event._meta.concrete_fields
    # a concrete field is one with a column (Django sets ``concrete = column is not None``)
    columns = ", ".join(connection.ops.quote_name(cast(str, f.column)) for f in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy:
            for event in events:
                copy.write_row([getattr(event, f.attname) for f in fields])


@transaction.atomic
def _record_batch(*, user: User, items: Sequence[EventInput], api_key: Any,
                  meter: Callable[[int], None] | None = None) -> list[tuple[Event, bool]]:
    keys = [item.idempotency_key for item in items]
    now = timezone.now()
    store = _store_skipping_replays if connection.vendor == "postgresql" and len(items) < COPY_MIN_ROWS else _store_new
    fresh, existing = store(user=user, items=items, api_key=api_key, now=now)
    if meter is not None and fresh:
        meter(len(fresh))  # may refuse (quota): raised inside the transaction, the rows just stored roll back
    if fresh:
        ids, users = [str(e.id) for e in fresh], [user.pk] * len(fresh)
        transaction.on_commit(lambda: _announce(ids, users))
    created = {e.idempotency_key: e for e in fresh}
    return [(created[k], True) if k in created else (existing[k], False) for k in keys]


def _store_skipping_replays(*, user: User, items: Sequence[EventInput], api_key: Any, now: dt.datetime
                            ) -> tuple[list[Event], dict[str, Event]]:
    """A few rows: one statement stores the new ones and skips the replays; only a replay costs a second query."""
    keys = [item.idempotency_key for item in items]
    built = [_build(user=user, item=item, api_key=api_key, now=now) for item in items]
    _stamp(built, user=user, api_key=api_key, now=now)
    stored = _insert_skipping_replays(built)
    missing = [k for k in keys if k not in stored]
    existing = {e.idempotency_key: e for e in Event.objects.filter(user=user, idempotency_key__in=missing)
                } if missing else {}
    _check_replays(items, existing)  # a conflict raises: the rows just inserted roll back with it
    return [e for e in built if e.idempotency_key in stored], existing


def _store_new(*, user: User, items: Sequence[EventInput], api_key: Any, now: dt.datetime
               ) -> tuple[list[Event], dict[str, Event]]:
    """Many rows (or not PostgreSQL): the replays are read first, then the new rows are written at once."""
    keys = [item.idempotency_key for item in items]
    existing = {e.idempotency_key: e for e in Event.objects.filter(user=user, idempotency_key__in=keys)}
    _check_replays(items, existing)
    fresh = [_build(user=user, item=item, api_key=api_key, now=now) for item in items
             if item.idempotency_key not in existing]
    _stamp(fresh, user=user, api_key=api_key, now=now)
    _insert(fresh)
    return fresh, existing


def _check_replays(items: Sequence[EventInput], existing: dict[str, Event]) -> None:
    """IdempotencyConflict naming every key stored before with other fields ("" body hash: a legacy row)."""
    conflicts = [i for i, item in enumerate(items) if item.idempotency_key in existing
                 and existing[item.idempotency_key].body_hash not in ("", event_body_hash(item))]
    if conflicts:
        raise IdempotencyConflict(positions=conflicts, keys=[items[i].idempotency_key for i in conflicts])


def _stamp(events: list[Event], *, user: User, api_key: Any, now: dt.datetime) -> None:
    """The member's experiment arm (their own events; an API key's end users are never bucketed) and the times."""
    if api_key is None and any(e.kind != Kind.IMPRESSION and e.arm_id is None for e in events):
        arm_id = _member_arm(user)
        for event in events:
            if event.kind != Kind.IMPRESSION and event.arm_id is None:
                event.arm_id = arm_id
    for event in events:
        event.relayed_at = event.created_at = now


@functools.cache
def _insert_sql(n_rows: int) -> tuple[str, tuple[Any, ...]]:
    fields = tuple(Event._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(cast(str, f.column)) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (f"INSERT INTO {Event._meta.db_table} ({columns}) VALUES {', '.join([row] * n_rows)} "
            "ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING idempotency_key"), fields


def _insert_skipping_replays(events: list[Event]) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING (PostgreSQL): the keys of the rows stored, not those stored before (a
    concurrent request's row with the same key is waited for, then skipped)."""
    if not events:
        return set()
    sql, fields = _insert_sql(len(events))
    params = [f.get_db_prep_save(getattr(e, f.attname), connection) for e in events for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def event_record_batch(*, user: User, items: Sequence[EventInput], api_key: Any = None,
                       meter: Callable[[int], None] | None = None) -> list[tuple[Event, bool]]:
    """Store many events in one transaction; replayed idempotency keys return the stored event (created False).

    A key stored with different fields raises IdempotencyConflict and stores nothing. ``meter(n)`` is called
    with the number of new events (replays are free) in the same transaction, after the one idempotency
    lookup and before the insert; whatever it raises (a quota's 429) rolls the request back."""
    keys = [item.idempotency_key for item in items]
    if len(set(keys)) != len(keys):
        raise ValidationError({"events": "idempotency keys must be unique within a batch"})
    try:
        return _record_batch(user=user, items=items, api_key=api_key, meter=meter)
    except IntegrityError:
        # A concurrent request stored one of these keys first (PostgreSQL waited for it to commit): the retry
        # finds its row and returns it as a replay, and meters the events still new. A database count of the
        # first try was rolled back with it; a Redis count stands (the rare race over-counts, never under-counts).
        return _record_batch(user=user, items=items, api_key=api_key, meter=meter)


KNOWN_MOVIES_TTL_S = 60.0
_known_movies: set[int] = set()  # ids this process found in the catalogue in the last KNOWN_MOVIES_TTL_S
_known_since = 0.0


def known_movies_forget(movie_id: int | None = None) -> None:
    """Drop one confirmed id (a movie deleted in this process) or all of them."""
    global _known_since
    if movie_id is None:
        _known_movies.clear()
        _known_since = 0.0
    else:
        _known_movies.discard(movie_id)


def movie_ids_unknown(*, movie_ids: Sequence[int]) -> list[int]:
    """The ids (in order, once each) that name no catalogue movie.

    Ids this process confirmed in the last minute need no query (an event names a movie it was shown, so nearly
    every event after the first few is answered from memory); the rest cost one indexed query. A movie deleted
    elsewhere within that minute is caught by the insert's foreign key (an error, not a stored event).
    """
    global _known_since
    now = time.monotonic()
    if now - _known_since > KNOWN_MOVIES_TTL_S:
        _known_movies.clear()
        _known_since = now
    wanted = sorted(set(movie_ids) - _known_movies)
    if wanted:
        _known_movies.update(movie_list().filter(id__in=wanted).values_list("id", flat=True))
    return [m for m in dict.fromkeys(movie_ids) if m not in _known_movies]


def event_record(*, user: User, kind: str, movie: Movie | None = None, movie_id: int | None = None,
                 idempotency_key: str | None = None, value: float | None = None, api_key: Any = None,
                 **fields: Any) -> tuple[Event, bool]:
    """Store one event durably (the outbox row); returns (event, created). A replayed key returns the first event.

    Pass ``movie`` or ``movie_id`` (unknown ids raise Http404). Without an idempotency key (server-side
    callers such as the portal) a fresh one is generated.
    """
    if movie is not None:
        movie_id = movie.id
    elif movie_id is None or movie_ids_unknown(movie_ids=[movie_id]):
        raise Http404(f"No movie with id {movie_id}")
    key = idempotency_key or f"srv:{uuid.uuid4()}"
    item = EventInput(movie_id=movie_id, kind=kind, idempotency_key=key, value=value, **fields)
    return event_record_batch(user=user, items=[item], api_key=api_key)[0]


def watchlist_set(*, user: User, movie_id: int, on: bool) -> Event:
    """Add a movie to the user's watchlist (on) or remove it: a watchlist event with value 1 or 0."""
    event, _ = event_record(user=user, kind=Kind.WATCHLIST, movie_id=movie_id, value=1.0 if on else 0.0)
    return event


def _impression_lengths_check(movie_ids: Sequence[int], propensities: Sequence[float],
                              positions: Sequence[int]) -> None:
    if not len(movie_ids) == len(propensities) == len(positions):
        raise ValidationError({"movie_ids": "movie_ids, propensities and positions must have the same length"})


def impression_log_batch(*, user: User, movie_ids: Sequence[int], propensities: Sequence[float],
                         positions: Sequence[int], policy_version: str, request_id: str,
                         served_at: dt.datetime | None = None, arm_id: int | None = None) -> list[Event]:
    """Log one served list's impressions with their propensities (for off-policy estimates on real logs).

    ``served_at`` (default now) is when the list was served, for lists stored later from the impression stream;
    ``arm_id`` the experiment arm that chose the list."""
    _impression_lengths_check(movie_ids, propensities, positions)
    missing = movie_ids_unknown(movie_ids=movie_ids)
    if missing:
        raise ValidationError({"movie_ids": f"unknown movie ids: {missing[:10]}"})
    items = [EventInput(movie_id=m, kind=Kind.IMPRESSION, idempotency_key=f"imp:{request_id}:{pos}:{m}",
                        propensity=float(p), position=int(pos), policy_version=policy_version, request_id=request_id,
                        occurred_at=served_at, arm_id=arm_id)
             for m, p, pos in zip(movie_ids, propensities, positions, strict=True)]
    return [event for event, _ in event_record_batch(user=user, items=items)]


def impressions_stream() -> str:
    return settings.IMPRESSIONS_STREAM


def impression_enqueue(*, user: User, movie_ids: Sequence[int], propensities: Sequence[float],
                       positions: Sequence[int], policy_version: str, request_id: str,
                       arm_id: int | None = None) -> str:
    """Queue one served list for storing (events.impressions stores it from the stream): one XADD; without a
    Redis URL or when the XADD fails it is stored now. Returns "stream" or "database". ``arm_id``: the
    experiment arm that chose the list, stored on every impression of it."""
    _impression_lengths_check(movie_ids, propensities, positions)
    served_at = dt.datetime.now(dt.UTC)
    if stream_enabled():
        fields: dict[FieldT, EncodableT] = {
            "user_id": str(user.pk), "movie_ids": ",".join(str(int(m)) for m in movie_ids),
            "propensities": ",".join(repr(float(p)) for p in propensities),
            "positions": ",".join(str(int(p)) for p in positions), "policy_version": policy_version,
            "request_id": request_id, "served_at": served_at.isoformat(),
            "arm_id": "" if arm_id is None else str(int(arm_id))}
        try:
            stream_client().xadd(impressions_stream(), fields, maxlen=STREAM_MAXLEN, approximate=True)
            return "stream"
        except redis.RedisError as exc:
            logger.warning("impression stream unavailable, storing request %s now: %s", request_id, exc)
    impression_log_batch(user=user, movie_ids=movie_ids, propensities=propensities, positions=positions,
                         policy_version=policy_version, request_id=request_id, served_at=served_at, arm_id=arm_id)
    return "database"


def event_outbox_relay(*, event_ids: Sequence[str] | None = None, limit: int = 10_000) -> int:
    """Append unrelayed outbox rows (the given ones, or the oldest pending) to the stream; returns how many.

    When Redis is down the rows stay with ``relayed_at`` NULL and the beat task retries later.
    Without a Redis URL there is no stream: rows are marked relayed and applied in-process.
    Rows relayed but never applied are relayed again when Redis lost the stream (``stream_loss_check``:
    at once) or, failing any sign of a loss, after ``EVENTS_REDELIVER_AFTER_S``.
    """
    pending = Event.objects.filter(relayed_at__isnull=True)
    loss = None
    if event_ids is not None:
        pending = pending.filter(id__in=list(event_ids))
    elif stream_enabled():
        try:
            loss = stream_loss_check()
        except redis.RedisError as exc:
            logger.warning("stream unavailable, the outbox waits: %s", exc)
            return 0
        started = timezone.now()
        cutoff = started - dt.timedelta(seconds=float(settings.EVENTS_REDELIVER_AFTER_S))
        if loss is not None:  # Redis lost the stream: everything relayed before that (and not after this run began)
            cutoff = max(cutoff, min(started, dt.datetime.fromtimestamp(loss.before, tz=dt.UTC)))
            logger.warning("the event stream was lost; relaying unapplied events relayed before %s again", cutoff)
        pending = Event.objects.filter(Q(relayed_at__isnull=True) | Q(applied_at__isnull=True, relayed_at__lt=cutoff))
    pending = pending.order_by("created_at")
    relayed = 0
    while relayed < limit:
        rows = list(pending.values_list("id", "user_id")[:RELAY_BATCH])
        if not rows:
            if loss is not None:
                _stream_loss_handled(loss)
            break
        if stream_enabled():
            try:
                stream_append([str(event_id) for event_id, _ in rows])
            except redis.RedisError as exc:
                logger.warning("stream unavailable, %d events stay in the outbox: %s", len(rows), exc)
                break
        # A crash between XADD and this UPDATE relays the rows twice; applying is idempotent by event id.
        Event.objects.filter(id__in=[r[0] for r in rows]).update(relayed_at=timezone.now())
        relayed += len(rows)
    return relayed


def _stream_loss_handled(loss: StreamLoss) -> None:
    try:
        stream_loss_handled(loss)
    except redis.RedisError as exc:  # the next run sees the loss again and relays the rows once more
        logger.warning("stream loss not marked handled: %s", exc)


@dataclass(frozen=True)
class AppliedBatch:
    """Events a consumer applied (skipping already-applied ones) and what its ``apply`` returned for them."""

    events: list[Event]
    result: Any = None


@contextmanager
def event_apply_lock() -> Iterator[None]:
    """A transaction in which no other process applies events (PostgreSQL advisory lock; SQLite serialises
    writers itself): the applier's own state moves in step with the events marked applied."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPLY_LOCK_ID])
        yield


def event_apply_batch(*, event_ids: Sequence[str], apply: Callable[[list[Event]], Any]) -> AppliedBatch:
    """Apply not-yet-applied events exactly once: lock them, ``apply`` them, mark applied, all in one transaction.

    ``apply`` receives the events (oldest first) inside the transaction, so whatever it writes (the online
    learner's checkpoint) commits or rolls back with them; its return value comes back as ``result``.
    Rating events become the user's catalog ratings. Events already applied (a redelivery after a crash) are
    skipped; the rest apply once.
    """
    with event_apply_lock():
        events = list(Event.objects.select_for_update(of=("self",)).select_related("movie", "user")
                      .filter(id__in=list(event_ids), applied_at__isnull=True).order_by("created_at", "id"))
        if not events:
            return AppliedBatch(events=[])
        _ratings_store(events)
        result = apply(events)
        Event.objects.filter(id__in=[e.id for e in events]).update(applied_at=timezone.now())
    return AppliedBatch(events=events, result=result)


def _ratings_store(events: list[Event]) -> None:
    """Rating events become the user's catalog rating (the history serving reads), in the applying transaction."""
    for event in events:
        if event.kind == Kind.RATING and event.value is not None:
            problem = time_window_problem(event.occurred_at)
            if problem:  # stored before times were checked: keep it out of the catalog, apply the rest
                logger.warning("rating event %s not stored as a rating: occurred_at %s", event.id, problem)
                continue
            rating_upsert(user=event.user, movie=event.movie, value=event.value, rated_at=event.occurred_at,
                          source="events")
