"""Django's Redis cache backend with one connection pool per process, failing soft while Redis is down.

Django keeps cache backends in an ``asgiref.local.Local``: under ASGI every request runs in its own
context, so every request builds a new ``RedisCache``, a new connection pool and a new TCP connection to
Redis (and ``request_finished`` drops it again). This backend shares the client, and so its pool, between
all instances of the process that use the same servers and options. redis-py's pool is thread-safe and
opens fresh connections in a forked child.

Django's client also builds a new ``redis.Redis`` object for every cache call (redis-py fills its
response-callback table in ``__init__``); ``SharedRedisCacheClient`` builds one per pool and reuses it
(a ``redis.Redis`` takes a connection from its pool per command, so threads can share it).

Everything that reads this cache can do without it (API keys, quotas and histories come from PostgreSQL,
docs/BILLING.md), so a Redis outage degrades instead of failing the request: a Redis error on a read is a
miss (``get`` returns the default, ``get_many`` nothing, ``has_key``/``add``/``touch``/``delete`` False),
a write is logged and dropped. After a connection error or timeout the client does not try Redis for
``BREAKER_S`` (a circuit breaker: a dead Redis costs one failed connect per process per interval, not one
per call). Deletes that could not reach Redis (e.g. a revoked API key's cached copy) are remembered and
sent first when Redis answers again, so no stale entry outlives the outage. ``incr``/``decr`` still raise
(a counter has no safe default; ``counting_cache`` gives counters a process-local cache meanwhile). ``available()`` tells callers (the burst throttle) that the breaker is open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

BREAKER_S = 5.0  # after a connection error or timeout, treat Redis as down for this long
LOST_DELETES_KEPT = 10_000  # deletes remembered for replay after an outage (oldest dropped beyond this)
DEFAULT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 2.0}  # a dead host fails fast

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()
T = TypeVar("T")


class SharedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client with one ``redis.Redis`` per connection pool, reused by every call,
    that answers "miss"/"not stored" while Redis is unreachable (see the module docstring)."""

    _client: Callable[..., Any]  # redis.Redis; set by Django's RedisCacheClient.__init__, not in django-stubs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis: dict[int, Any] = {}
        self._down_until = 0.0
        self._lost_deletes: dict[Any, None] = {}  # an ordered set of keys whose delete did not reach Redis
        self._state = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's, not in django-stubs
        client = self._redis.get(id(pool))
        if client is None:
            client = self._redis.setdefault(id(pool), self._client(connection_pool=pool))
        return client

    # --- failing soft -------------------------------------------------------------------------------
    def available(self) -> bool:
        """False while the breaker is open (Redis failed to answer less than BREAKER_S ago)."""
        return time.monotonic() >= self._down_until

    def _soft(self, call: Callable[[], T], fallback: T, *, lost: Iterable[Any] = ()) -> T:
        if not self.available():
            self._remember(lost)
            return fallback
        try:
            if self._lost_deletes:
                self._replay_deletes()
            return call()
        except redis.RedisError as exc:
            self._remember(lost)
            if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
                self._open_breaker(exc)
            else:  # e.g. OOM or READONLY: this call degrades, the next one tries again
                logger.warning("cache call failed, degrading: %s", exc)
            return fallback

    def _open_breaker(self, exc: Exception) -> None:
        with self._state:
            was_up = self.available()
            self._down_until = time.monotonic() + BREAKER_S
        if was_up:
            logger.warning("cache (Redis) unavailable, serving without it for %.0f s: %s", BREAKER_S, exc)

    def _remember(self, keys: Iterable[Any]) -> None:
        with self._state:
            for key in keys:
                self._lost_deletes[key] = None
            while len(self._lost_deletes) > LOST_DELETES_KEPT:
                self._lost_deletes.pop(next(iter(self._lost_deletes)))

    def _replay_deletes(self) -> None:
        with self._state:
            keys = list(self._lost_deletes)
        if keys:
            super().delete_many(keys)  # raises while Redis is still down: the keys stay remembered
            with self._state:
                for key in keys:
                    self._lost_deletes.pop(key, None)
            logger.info("cache back: %d deletes made during the outage replayed", len(keys))

    def get(self, key: Any, default: Any) -> Any:
        return self._soft(lambda: super(SharedRedisCacheClient, self).get(key, default), default)

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        keys = list(keys)
        return self._soft(lambda: super(SharedRedisCacheClient, self).get_many(keys), {})

    def has_key(self, key: Any) -> bool:
        return self._soft(lambda: super(SharedRedisCacheClient, self).has_key(key), False)

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._soft(lambda: super(SharedRedisCacheClient, self).add(key, value, timeout), False)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._soft(lambda: super(SharedRedisCacheClient, self).set(key, value, timeout), None)

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        self._soft(lambda: super(SharedRedisCacheClient, self).set_many(data, timeout), None)

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._soft(lambda: super(SharedRedisCacheClient, self).touch(key, timeout), False)

    def delete(self, key: Any) -> bool:
        return self._soft(lambda: super(SharedRedisCacheClient, self).delete(key), False, lost=[key])

    def delete_many(self, keys: Iterable[Any]) -> None:
        keys = list(keys)
        self._soft(lambda: super(SharedRedisCacheClient, self).delete_many(keys), None, lost=keys)

    def clear(self) -> bool:
        return self._soft(lambda: super(SharedRedisCacheClient, self).clear(), False)

    def incr(self, key: Any, delta: int) -> Any:
        """Still raises while Redis is down (a counter has no safe default), but at once while the breaker is open."""
        if not self.available():
            raise redis.ConnectionError("Redis is unavailable (the cache's breaker is open)")
        try:
            return super().incr(key, delta)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._open_breaker(exc)
            raise


class SharedRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` whose client (connection pool) is per process and
    which fails soft while Redis is down."""

    # set by Django's RedisCache.__init__, not in django-stubs
    _servers: list[str]
    _options: dict[str, Any]

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedRedisCacheClient
        self._options = {**DEFAULT_OPTIONS, **self._options}

    @cached_property
    def _cache(self) -> Any:
        key = (self._class, tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client

    def available(self) -> bool:
        """False while Redis is known to be down (the client's breaker is open)."""
        return self._cache.available()


_fallback: Any = None


def counting_cache() -> Any:
    """The cache to count in (throttles): the default cache, or while its breaker is open a process-local
    one, so limits still hold, per process, during a Redis outage instead of not at all."""
    global _fallback
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    default = caches["default"]
    available = getattr(default, "available", None)
    if available is None or available():
        return default
    if _fallback is None:
        _fallback = LocMemCache("apex-counting-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
    return _fallback
