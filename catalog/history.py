"""A user's recent ratings for serving, kept per process and checked against a version token in Redis.

Every recommendation request needs the user's last ratings (oldest first). Reading them from PostgreSQL
costs a pooled connection, an ORM query and a round trip; a user's history changes only when they rate.
So each process keeps the histories it served (an LRU of ``MAX_USERS``), each stamped with the user's
*token* and the global *epoch*, two keys in the shared cache that the caller reads in the same round trip as
its other per-request keys (``history_keys``; recommendations.serving reads them with the engine versions).
A stored history is used only while both still match and it is younger than ``MAX_AGE_S``.

Processes share what they read: a history read from the database is also written to the shared cache under
the same token and epoch (``data_key``, expiring after ``MAX_AGE_S``), and ``history_keys`` includes that key,
so another process finds it in the round trip it makes anyway. After a rating, the live push (a Celery worker)
reads the member's new history once, and the web workers serving the member's next request take it from there
instead of each querying PostgreSQL. A shared copy obeys the same rules as a process's own: same token, same
epoch, same limit, and ``MAX_AGE_S`` counted from the database read, not from when a process picked it up.

Writers change the token: every saved or deleted ``Rating`` row (signals, so admin edits and cascades
count) sets a new token at once and again after its transaction commits; bulk writes that bypass signals
(the MovieLens importer) bump the epoch (``history_epoch_bump``). Either order of a reader and a writer ends
with a token the stale copy does not carry: a reader stores what it read under the token it saw *before*
reading, or under a token it created with ``add`` (never over a writer's). If a bump is lost (Redis down at
that moment), ``MAX_AGE_S`` bounds how long a process may serve the old history.

Only with a shared cache (a Redis URL): with the per-process local-memory cache of the embedded default,
another process's writes would not reach this process's tokens, so the database is read every time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .selectors import rating_list_for_user

log = logging.getLogger(__name__)

EPOCH_KEY = "catalog:history:epoch"
TOKEN_TTL_S = 7 * 24 * 3600
MAX_AGE_S = 60.0
MAX_USERS = 4096


@dataclass(frozen=True)
class History:
    """A user's rated movies, oldest first: movie ids, unix times and ratings."""

    movie_ids: list[int]
    times: list[float]
    ratings: list[float]


@dataclass
class _Entry:
    token: str
    epoch: Any
    limit: int
    stored_at: float
    history: History


_entries: OrderedDict[int, _Entry] = OrderedDict()
_lock = threading.Lock()


def enabled() -> bool:
    """True when the cache is shared between processes (Redis), so tokens written anywhere are seen here."""
    return bool(settings.REDIS_URL)


def token_key(user_id: int) -> str:
    return f"catalog:history:{user_id}"


def data_key(user_id: int) -> str:
    return f"catalog:history:data:{user_id}"


def history_keys(user_id: int) -> list[str]:
    """The cache keys to read (with the caller's own, in one ``get_many``) before ``rating_history``."""
    return [token_key(user_id), EPOCH_KEY, data_key(user_id)] if enabled() else []


def _shared_entry(value: Any, *, token: Any, epoch: Any, limit: int) -> _Entry | None:
    """The history another process stored (``data_key``), if it was read under this token, epoch and limit and
    is younger than ``MAX_AGE_S``; None otherwise (absent, stale or malformed)."""
    try:
        stored_token, stored_epoch, stored_limit, read_at, ids, times, ratings = value
    except (TypeError, ValueError):
        return None
    age = time.time() - float(read_at)
    if token is None or stored_token != token or stored_epoch != epoch or stored_limit != limit or not 0 <= age < MAX_AGE_S:
        return None
    return _Entry(token, epoch, limit, time.monotonic() - age, History(list(ids), list(times), list(ratings)))


def rating_history(*, user: Any, limit: int, published: dict[str, Any] | None = None) -> History:
    """The user's ``limit`` most recent ratings, oldest first; ``published``: the values of ``history_keys``."""
    if not enabled() or published is None:
        return _query(user, limit)
    token, epoch = published.get(token_key(user.pk)), published.get(EPOCH_KEY)
    with _lock:
        entry = _entries.get(user.pk)
        if (entry is not None and token is not None and entry.token == token and entry.epoch == epoch
                and entry.limit == limit and time.monotonic() - entry.stored_at < MAX_AGE_S):
            _entries.move_to_end(user.pk)
            return entry.history
    shared = _shared_entry(published.get(data_key(user.pk)), token=token, epoch=epoch, limit=limit)
    if shared is not None:
        _remember(user.pk, shared)
        return shared.history
    history = _query(user, limit)
    if token is None:  # first read since the cache was emptied: create a token, unless a writer set one
        token = uuid.uuid4().hex
        try:
            if not cache.add(token_key(user.pk), token, TOKEN_TTL_S):
                return history
        except Exception:  # noqa: BLE001 - Redis trouble: serve from the database, store nothing
            log.warning("history token for user %s not created; not caching", user.pk, exc_info=True)
            return history
    _remember(user.pk, _Entry(token, epoch, limit, time.monotonic(), history))
    try:  # for the other processes: stored under the token seen before the read, as this process's own copy
        cache.set(data_key(user.pk), (token, epoch, limit, time.time(), history.movie_ids, history.times,
                                      history.ratings), MAX_AGE_S)
    except Exception:  # noqa: BLE001 - Redis trouble: the others read the database, as without sharing
        log.warning("history of user %s not shared", user.pk, exc_info=True)
    return history


def _remember(user_id: int, entry: _Entry) -> None:
    with _lock:
        _entries[user_id] = entry
        _entries.move_to_end(user_id)
        while len(_entries) > MAX_USERS:
            _entries.popitem(last=False)


def _query(user: Any, limit: int) -> History:
    rows = list(rating_list_for_user(user=user).values_list("movie_id", "rated_at", "value")[:limit])
    rows.reverse()
    return History([r[0] for r in rows], [r[1].timestamp() for r in rows], [float(r[2]) for r in rows])


def history_changed(*, user_ids: Iterable[int]) -> None:
    """The users' ratings changed (or are about to, in the open transaction): new tokens now and on commit."""
    ids = sorted(set(user_ids))
    if not ids or not enabled():
        return
    _new_tokens(ids)
    transaction.on_commit(lambda: _new_tokens(ids))


def history_epoch_bump() -> None:
    """A bulk write changed ratings of users not listed (signals bypassed): every stored history is stale."""
    if not enabled():
        return
    _set_many({EPOCH_KEY: uuid.uuid4().hex})
    transaction.on_commit(lambda: _set_many({EPOCH_KEY: uuid.uuid4().hex}))


def _new_tokens(user_ids: list[int]) -> None:
    _set_many({token_key(u): uuid.uuid4().hex for u in user_ids})


def _set_many(values: dict[str, str]) -> None:
    try:
        cache.set_many(values, TOKEN_TTL_S)
    except Exception:  # noqa: BLE001 - never fail a rating write over the cache; MAX_AGE_S bounds staleness
        log.warning("rating history tokens not updated (%s); cached histories expire within %.0f s",
                    ", ".join(values), MAX_AGE_S, exc_info=True)


def forget_all() -> None:
    """Drop every stored history of this process (tests)."""
    with _lock:
        _entries.clear()
