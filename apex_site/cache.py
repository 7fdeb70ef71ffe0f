"""Django's Redis cache backend with one connection pool per process.

Django keeps cache backends in an ``asgiref.local.Local``: under ASGI every request runs in its own
context, so every request builds a new ``RedisCache``, a new connection pool and a new TCP connection to
Redis (and ``request_finished`` drops it again). This backend shares the client, and so its pool, between
all instances of the process that use the same servers and options. redis-py's pool is thread-safe and
opens fresh connections in a forked child.

Django's client also builds a new ``redis.Redis`` object for every cache call (redis-py fills its
response-callback table in ``__init__``); ``SharedRedisCacheClient`` builds one per pool and reuses it
(a ``redis.Redis`` takes a connection from its pool per command, so threads can share it).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client with one ``redis.Redis`` per connection pool, reused by every call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._redis.get(id(pool))
        if client is None:
            client = self._redis.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class SharedRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` whose client (connection pool) is per process."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

    @cached_property
    def _cache(self) -> Any:
        key = (self._class, tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
