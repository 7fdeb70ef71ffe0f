"""Real processes for the reliability tests: Celery workers and a private redis-server, with polling waits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)


def database_url() -> str:
    """A URL for the test database this process is using (the worker must use the same one)."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(name: str, *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process (solo pool) on the test database; killed with SIGKILL on exit."""
    full_env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
                "DJANGO_SETTINGS_MODULE": "apex_site.settings", "APEX_THREADS": "1",
                "ML_ARTIFACTS_DIR": str(settings.ML_ARTIFACTS_DIR), **env}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.events.worker", "worker", "-P", "solo", "-c", "1", "-n",
             f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"ready." in log.read_bytes() or proc.poll() is not None, timeout=90,
                 what=f"worker {name} to start")
        assert proc.poll() is None, log.read_text()[-3000:]
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own (so stopping it never disturbs the shared one), with an append-only file."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        wait_for(lambda: _pings(redis.Redis.from_url(self.url)), timeout=20, what="private redis to start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False
