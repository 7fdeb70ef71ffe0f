"""Real dependencies a fault test controls: a redis-server of its own (no persistence, so a restart comes
back empty) and a small PostgreSQL connection pool whose connections the test can hold."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.events.processes import free_port, wait_for


class EphemeralRedis:
    """``redis-server --save '' --appendonly no`` on a free port: ``stop`` is an outage, ``start`` an empty Redis."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.pings, timeout=20, what="the test's redis-server to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # an outage, not a shutdown: nothing is saved (there is nothing to save anyway)
            self.proc.wait(timeout=20)
        self.proc = None

    def pings(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


class SmallPool:
    """psycopg's connection pool (``DB_POOL`` in production) for the ``default`` alias, with few connections."""

    def __init__(self, settings_dict: dict[str, Any]) -> None:
        self.settings_dict = settings_dict

    def wrapper(self) -> Any:
        """A database wrapper on the pool, for the calling thread (``connections["default"] = pool.wrapper()``)."""
        from django.db.backends.postgresql.base import DatabaseWrapper

        return DatabaseWrapper(self.settings_dict, "default")

    @property
    def pool(self) -> Any:
        """The psycopg pool itself: ``pool.getconn()`` holds one of its connections, ``putconn`` returns it."""
        return self.wrapper().pool


@contextmanager
def small_pool(*, size: int, timeout_s: float) -> Iterator[SmallPool]:
    """A pool of ``size`` connections whose ``getconn`` gives up after ``timeout_s``; closed on exit."""
    from django.db import connections

    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict["CONN_MAX_AGE"] = 0
    settings_dict.setdefault("OPTIONS", {})["pool"] = {"min_size": 0, "max_size": size, "timeout": timeout_s}
    pool = SmallPool(settings_dict)
    pool.pool.open(wait=False)
    try:
        yield pool
    finally:
        pool.wrapper().close_pool()
