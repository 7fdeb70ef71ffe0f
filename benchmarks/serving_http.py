"""HTTP half of the serving benchmark: uvicorn on loopback, the recommendation endpoint vs a bare DRF endpoint.

Run by benchmarks/serving.py. The server uses this module as its URLconf (``ROOT_URLCONF``): the site's
own URLs plus ``/bench/bare``, a DRF view with the same authentication and permission as the
recommendation endpoint that returns a constant. A private redis-server gives the production cache
and Celery broker (impressions are enqueued, as in production), and a fresh SQLite database gets the
schema without migrations, one user with an API key, a plan, and a rating history.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

try:  # as a URLconf inside the server process
    from django.urls import include, path
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class BareApi(APIView):
        """The baseline: DRF authentication + permission, no work."""

        permission_classes = [IsAuthenticated]

        def get(self, request: Any) -> Response:
            return Response({"ok": True})

    urlpatterns = [path("bench/bare", BareApi.as_view()), path("", include("apex_site.urls"))]
except Exception:  # noqa: BLE001 - imported outside Django by the driver
    urlpatterns = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup_database(env: dict[str, str], movie_ids: list[int]) -> tuple[int, str]:
    """Schema without migrations, a user with plan, API key and 30 ratings; returns (user id, raw key)."""
    code = f"""
import datetime as dt, django, os, random, sys
sys.path.insert(0, {str(ROOT)!r})
django.setup()
from django.conf import settings
class NoMigrations(dict):
    def __contains__(self, item): return True
    def __getitem__(self, item): return None
settings.MIGRATION_MODULES = NoMigrations()
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
from django.contrib.auth import get_user_model
from accounts.services import api_key_create
from billing.services import plans_sync
from catalog.models import Movie, Rating
plans_sync()
user = get_user_model().objects.create_user("bench", "bench@example.com", "x")
ids = {movie_ids!r}
Movie.objects.bulk_create([Movie(id=m, title=f"movie {{m}}") for m in ids])
base = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
Rating.objects.bulk_create([Rating(user=user, movie_id=m, value=4.0, rated_at=base + dt.timedelta(hours=i))
                            for i, m in enumerate(ids[:30])])
key, raw = api_key_create(user=user, name="bench")
from billing.models import Plan
from billing.services import account_plan_set
account_plan_set(user=user, plan=Plan.objects.get(code="enterprise"))  # Free's 1,000 calls would run out mid-run
print(user.pk, raw)
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    user_id, raw = out.stdout.split()[-2:]
    return int(user_id), raw


async def _load(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    codes: dict[int, int] = {}
    sample: list[str] = []
    stop = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = await client.get(url, headers=headers)
            latencies.append(time.perf_counter() - t)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code != 200:
                errors += 1
                if not sample:
                    sample.append(r.text[:300])

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return {"requests": len(ms), "errors": errors, "status_codes": codes, "error_sample": sample, "rps": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


def _postgres_database(server: str, name: str, create: bool) -> str:
    """Create (or drop) a scratch database on a PostgreSQL server URL; returns its URL."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def run_http(bundle: Path, tier: str, *, seconds: float, concurrency: int, workers: int,
             postgres: str | None = None) -> dict[str, Any]:
    """Start redis + uvicorn, load both endpoints for ``seconds`` each (after a warm-up), stop everything.

    ``postgres`` (a server URL such as postgres://postgres@127.0.0.1:5432) gives a scratch PostgreSQL
    database; otherwise SQLite, where concurrent quota writes need a single worker.
    """
    items = json.loads((bundle / "items.json").read_text())["movie_ids"]
    popularity = np.load(bundle / "popularity.npy")
    movie_ids = [items[i] for i in np.argsort(-popularity)[:200].tolist()]
    tmp = Path(tempfile.mkdtemp(prefix="apex-bench-"))
    redis_port, http_port = _free_port(), _free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    db_name = f"apex_bench_serving_{os.getpid()}"
    database = _postgres_database(postgres, db_name, True) if postgres else f"sqlite:///{tmp / 'bench.sqlite3'}"
    artifacts = tmp / "artifacts"
    artifacts.mkdir()
    (artifacts / "serving").symlink_to(bundle.resolve())
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.serving_settings",
           "DATABASE_URL": database, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "ML_ARTIFACTS_DIR": str(artifacts), "APEX_SERVING_TIER": tier, "THROTTLE_BURST": "1000000/min",
           "THROTTLE_ANON": "1000000/min", "DEBUG": "false", "SECRET_KEY": "benchmark-only-secret-key-0123456789",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false", "DB_CONN_MAX_AGE": "0", "DB_POOL": "true", "PYTHONPATH": str(ROOT)}
    server = None
    try:
        user_id, raw = _setup_database(env, movie_ids)
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "apex_site.asgi:application",
                                   "--host", "127.0.0.1", "--port", str(http_port), "--workers", str(workers),
                                   "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{http_port}"
        headers = {"Authorization": f"Api-Key {raw}"}
        rec_url = f"{base}/v1/recommendations/user/{user_id}?k=10"
        _wait(rec_url, headers)
        asyncio.run(_load(rec_url, headers, 3.0, concurrency))  # warm every worker
        asyncio.run(_load(f"{base}/bench/bare", headers, 2.0, concurrency))
        bare = asyncio.run(_load(f"{base}/bench/bare", headers, seconds, concurrency))
        rec = asyncio.run(_load(rec_url, headers, seconds, concurrency))
        return {"tier": tier, "database": "postgresql" if postgres else "sqlite", "workers": workers, "concurrency": concurrency, "seconds": seconds, "bare": bare,
                "recommendations": rec, "ratio": rec["rps"] / bare["rps"]}
    finally:
        for proc in (server, redis):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
        if postgres:
            _postgres_database(postgres, db_name, False)


def _wait(url: str, headers: dict[str, str], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            r = httpx.get(url, headers=headers, timeout=60)
            if r.status_code == 200:
                return
            raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
        except httpx.TransportError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not come up in {timeout:.0f} s")
