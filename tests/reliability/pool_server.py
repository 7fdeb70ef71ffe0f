"""A real uvicorn server with the PostgreSQL pool (DB_POOL=true, a small pool), for the pool-leak test.

``pool_urls`` adds, to the site's own URLs, a test-only pool occupancy number and views that fail after
they checked a connection out (a 500 under /v1 and in the portal, a slow view a client walks away from).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tests.events.processes import REPO, free_port, wait_for

POOL_MAX_SIZE = 4


class PoolServer:
    """uvicorn serving ``apex_site.asgi`` with ``tests.reliability.pool_settings`` on the test database."""

    def __init__(self, *, database_url: str, redis_url: str, log: Path, debug: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST",)}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "tests.reliability.pool_settings",
            "DATABASE_URL": database_url, "REDIS_URL": redis_url, "DB_POOL": "true",
            "DB_POOL_MAX_SIZE": str(POOL_MAX_SIZE), "DEBUG": "true" if debug else "false",
            "SECRET_KEY": secrets.token_urlsafe(50), "SECURE_SSL_REDIRECT": "false", "THROTTLE_ANON": "5/min", "DATA_UPLOAD_MAX_MEMORY_SIZE": "20000",
            "APEX_THREADS": "1", "LOG_LEVEL": "CRITICAL", "PYTHONUNBUFFERED": "1",
        })
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "apex_site.asgi:application", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "critical"],
                cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._answers, timeout=120, interval=0.3, what="the pool server to answer")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return self.pool_stats() is not None
        except OSError:
            return False

    def pool_stats(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + "/test-pool-stats", timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        time.sleep(0.1)
