"""Process-local memories that every process drops at once, through a Redis pub/sub channel per memory.

A request that finds its answer in this process's memory needs no round trip to the shared cache. Such a
memory is only safe if what must disappear disappears everywhere at once (a revoked API key), so:

* ``LocalMemory.forget(keys)`` drops the keys here and publishes them on the memory's channel; a listener
  thread in every process drops them on receipt (milliseconds; no polling).
* A memory serves nothing while its listener is not subscribed — Redis not configured, down, or the thread not
  started yet — and it is emptied whenever the subscription (re)starts. Callers then read the shared cache, so a
  broadcast lost to an outage can never keep a dropped value alive.
* A value read before a ``forget`` and stored after it is not kept (``generation``), so a request racing a
  revocation cannot put the old value back.
* Entries also expire after ``ttl_s``: changes that nobody broadcasts show within it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Hashable, Iterable
from typing import Any

import redis
from django.conf import settings

log = logging.getLogger(__name__)
RECONNECT_S = 1.0
MAX_ENTRIES = 50_000


class LocalMemory:
    """Values kept in this process for ``ttl_s``, dropped in every process by ``forget`` (see the module)."""

    def __init__(self, name: str, ttl_s: float) -> None:
        self.channel = f"apex:forget:{name}"
        self.ttl_s = ttl_s
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._generation = 0
        self._pid: int | None = None  # the process whose listener runs (a forked child starts its own)

    # ---- reads and writes -----------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Take before reading the value from elsewhere; pass to ``put`` (a forget in between discards it)."""
        return self._generation

    def get(self, key: Hashable) -> Any | None:
        if not self._active():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any, *, generation: int) -> None:
        if not self._active():
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, value)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop ``keys`` here and in every process listening (best effort while Redis is down: see the module)."""
        keys = list(keys)
        self._drop(keys)
        url = settings.REDIS_URL
        if not url or not keys:
            return
        try:
            _publisher(url).publish(self.channel, json.dumps(keys))
        except redis.RedisError as exc:
            log.warning("could not broadcast %s to the other processes: %s", self.channel, exc)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    # ---- the listener -------------------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def _active(self) -> bool:
        if self._pid != os.getpid():
            self._start()
        return self._listening.is_set()

    def _drop(self, keys: list[str]) -> None:
        with self._lock:
            self._generation += 1
            for key in keys:
                self._entries.pop(key, None)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._listening = threading.Event()  # a forked child's copy may say "set": its thread did not survive
            self._entries.clear()
            url = settings.REDIS_URL
        if url:
            threading.Thread(target=self._listen, args=(url,), name=f"listen {self.channel}", daemon=True).start()

    def _listen(self, url: str) -> None:
        while True:
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=1.0, health_check_interval=15)
                pubsub = client.pubsub()
                pubsub.subscribe(self.channel)
                while True:
                    message = pubsub.get_message(timeout=15.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self.clear()  # whatever was dropped while not subscribed is not here either
                        self._listening.set()
                    elif message["type"] == "message":
                        self._drop(json.loads(message["data"]))
            except Exception as exc:  # noqa: BLE001 - any failure: serve nothing from memory until subscribed again
                if self._listening.is_set():
                    log.warning("%s listener lost its subscription, this process's memory is off: %s",
                                self.channel, exc)
                self._listening.clear()
                self.clear()
                time.sleep(RECONNECT_S)


_publishers: dict[str, redis.Redis] = {}


def _publisher(url: str) -> redis.Redis:
    client = _publishers.get(url)
    if client is None:
        client = _publishers[url] = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
    return client
