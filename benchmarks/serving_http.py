"""HTTP half of the serving benchmark: uvicorn on loopback, the recommendation endpoint vs a bare DRF endpoint.

Run by benchmarks/serving.py. The server uses this module as its URLconf (``ROOT_URLCONF``): the site's
own URLs plus ``/bench/bare``, a DRF view with the same authentication and permission as the
recommendation endpoint that returns a constant. A private redis-server gives the production cache
and Celery broker (impressions are enqueued, as in production), and a fresh database gets the schema
without migrations and members, each with an API key and 30 ratings of their own (drawn from the 200
most popular movies, seeded). Every request is one member asking for their own list with their own key:

* ``bare``: the bare endpoint, cycling over the warm members' keys;
* ``warm``: the recommendation endpoint for the same members, cycling (each worker has served them before,
  so their rating history, ranked pool and the models' user-side states are cached in the worker);
* ``cold``: the recommendation endpoint, each request a member never served before (history read from
  the database, quota counter seeded, every model run from scratch).

The three loads alternate for ``rounds`` rounds; the table reports requests/s pooled over the rounds, the
median of the per-round ratios, and the CPU each request cost in the server's processes (uvicorn workers,
redis-server, PostgreSQL), read from /proc.
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
            return Response({"ok": True, "worker": os.getpid()})  # the load generator balances on it

    def plain_view(request: Any) -> Any:
        """A plain Django view (the site's middleware, no DRF): what the framework itself costs."""
        from django.http import HttpResponse

        return HttpResponse(b'{"ok": true, "worker": %d}' % os.getpid(), content_type="application/json")

    urlpatterns = [path("bench/bare", BareApi.as_view()), path("bench/django", plain_view),
                   path("", include("apex_site.urls"))]
except Exception:  # noqa: BLE001 - imported outside Django by the driver
    urlpatterns = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup_database(env: dict[str, str], movie_ids: list[int], n_users: int) -> list[tuple[int, str]]:
    """Schema without migrations; ``n_users`` members, each with an API key and 30 ratings; [(user id, key)]."""
    code = f"""
import datetime as dt, django, json, random, sys
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
from accounts.models import ApiKey
from accounts.keys import key_generate, key_hash
from billing.services import plans_sync
from catalog.models import Movie, Rating
plans_sync()
User = get_user_model()
User.objects.bulk_create([User(username=f"bench{{i}}", email=f"bench{{i}}@example.com", password="!")
                          for i in range({n_users})], batch_size=2000)
users = list(User.objects.filter(username__startswith="bench").order_by("id"))
ids = {movie_ids!r}
Movie.objects.bulk_create([Movie(id=m, title=f"movie {{m}}") for m in ids])
rng, base = random.Random(0), dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
Rating.objects.bulk_create([Rating(user=u, movie_id=m, value=rng.choice([3.0, 3.5, 4.0, 4.5, 5.0]),
                                   rated_at=base + dt.timedelta(hours=j)) for u in users
                            for j, m in enumerate(rng.sample(ids, 30))], batch_size=5000)
keys = []
for u in users:
    prefix, raw = key_generate()
    keys.append((ApiKey(user=u, name="bench", prefix=prefix, hashed_key=key_hash(raw)), u.pk, raw))
ApiKey.objects.bulk_create([k for k, _, _ in keys], batch_size=2000)
print(json.dumps([[pk, raw] for _, pk, raw in keys]))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [(int(pk), raw) for pk, raw in json.loads(out.stdout.strip().splitlines()[-1])]


async def _balanced_clients(concurrency: int, workers: int, probe: tuple[str, dict[str, str]]) -> list[Any]:
    """``concurrency`` one-connection clients, spread evenly over the server's worker processes.

    uvicorn's workers accept from one socket, and which one takes a new connection is up to the kernel: 8
    keep-alive connections often land 6/2 or 8/0, and a run then measures one worker instead of the server.
    A proxy in front would spread them; here each connection asks the bare endpoint which worker it reached
    and is replaced until every worker holds its share.
    """
    import httpx

    share = -(-concurrency // workers)
    clients: list[Any] = []
    per_worker: dict[int, int] = {}
    for _ in range(concurrency * 20):
        if len(clients) == concurrency:
            return clients
        client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        worker = (await client.get(probe[0], headers=probe[1])).json()["worker"]
        if per_worker.get(worker, 0) < share:
            per_worker[worker] = per_worker.get(worker, 0) + 1
            clients.append(client)
        else:
            await client.aclose()
    for client in clients:
        await client.aclose()
    raise RuntimeError(f"could not spread {concurrency} connections over {workers} workers: {per_worker}")


async def _load(targets: list[Any], seconds: float, concurrency: int, *,
                workers: int, probe: tuple[str, dict[str, str]], cycle: bool = True) -> dict[str, Any]:
    """Keep ``concurrency`` keep-alive connections, spread evenly over ``workers`` by asking ``probe`` (the
    bare endpoint), busy for ``seconds`` on the targets in order (cycling, or each once: then the run also
    ends when they are used up)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    codes: dict[int, int] = {}
    sample: list[str] = []
    position = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, position
        while time.perf_counter() < stop and (cycle or position < len(targets)):
            url, headers, *body = targets[position % len(targets)]
            position += 1
            t = time.perf_counter()
            r = await (client.post(url, headers=headers, json=body[0]) if body else client.get(url, headers=headers))
            latencies.append(time.perf_counter() - t)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code not in (200, 202):
                errors += 1
                if not sample:
                    sample.append(r.text[:300])

    clients = await _balanced_clients(concurrency, workers, probe)
    try:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(worker(c) for c in clients))
        wall = time.perf_counter() - start
    finally:
        for c in clients:
            await c.aclose()
    ms = np.asarray(latencies or [float("nan")]) * 1e3
    return {"requests": len(latencies), "errors": errors, "status_codes": codes, "error_sample": sample,
            "seconds": wall, "rps": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


def _children(server: subprocess.Popen) -> list[int]:
    """The uvicorn supervisor's child processes."""
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                           text=True).stdout.split()]


def _server_pids(server: subprocess.Popen, redis: subprocess.Popen) -> dict[str, list[int]]:
    """The server's processes by kind: the uvicorn supervisor and workers, the private redis-server, and every
    PostgreSQL process (backends and background processes alike)."""
    postgres = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
    return {"workers": [server.pid, *_children(server)], "redis": [redis.pid], "postgres": [*map(int, postgres)]}


def _cpu_seconds(pids: list[int]) -> float:
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone (a PostgreSQL backend closed): its time is lost to both sides alike
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _measured(targets: list[Any], seconds: float, concurrency: int, pids: dict[str, list[int]], *,
              cycle: bool = True, workers: int, probe: tuple[str, dict[str, str]]) -> dict[str, Any]:
    before = {kind: _cpu_seconds(group) for kind, group in pids.items()}
    result = asyncio.run(_load(targets, seconds, concurrency, cycle=cycle, workers=workers, probe=probe))
    n = max(result["requests"], 1)
    result["cpu_split_ms"] = {kind: (_cpu_seconds(group) - before[kind]) / n * 1e3 for kind, group in pids.items()}
    result["server_cpu_ms"] = sum(result["cpu_split_ms"].values())
    return result


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from several runs of a load: requests/s over their summed time, the median run's percentiles."""
    n = sum(r["requests"] for r in runs)
    mid = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {"requests": n, "rps": n / sum(r["seconds"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "p50_ms": mid["p50_ms"], "p95_ms": mid["p95_ms"], "p99_ms": mid["p99_ms"],
            "server_cpu_ms": sum(r["server_cpu_ms"] * r["requests"] for r in runs) / max(n, 1),
            "cpu_split_ms": {kind: sum(r["cpu_split_ms"][kind] * r["requests"] for r in runs) / max(n, 1)
                             for kind in runs[0]["cpu_split_ms"]},
            "error_sample": next((r["error_sample"] for r in runs if r["error_sample"]), [])}


def _postgres_database(server: str, name: str, create: bool) -> str:
    """Create (or drop) a scratch database on a PostgreSQL server URL; returns its URL."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


LOADS = ("raw", "django", "bare", "warm", "rated", "cold", "event", "batch")
BATCH = 20  # events per batch request


def _worker_pids(server: subprocess.Popen) -> list[int]:
    """uvicorn's worker processes (children of the supervisor running the site), for the profiler."""
    return [p for p in _children(server)
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]


def _profile(name: str, targets: list[Any], seconds: float, concurrency: int, workers: list[int],
             spread: dict[str, Any], out_dir: Path | None) -> dict[str, Any]:
    """One more run of a load with py-spy sampling every worker: the per-stage CPU shares and a flame graph."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {"error": "py-spy is not installed (requirements-dev.txt)"}
    from benchmarks.support import flame

    tmp = Path(tempfile.mkdtemp(prefix="apex-spy-"))
    recorders = [subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--duration",
                                   str(int(seconds) + 1), "--format", "raw", "--full-filenames", "--gil", "--nonblocking", "--output",
                                   str(tmp / f"{pid}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for pid in workers]
    time.sleep(0.5)  # attached before the load starts
    result = asyncio.run(_load(targets, seconds, concurrency, cycle=name not in ("rated", "cold", "event", "batch"),
                               **spread))
    for rec in recorders:
        rec.wait(timeout=60)
    stacks = flame.parse(line for f in tmp.glob("*.txt") for line in f.read_text().splitlines())
    if os.environ.get("APEX_BENCH_KEEP_STACKS"):  # the raw samples, for a closer look
        Path(os.environ["APEX_BENCH_KEEP_STACKS"], f"stacks-{name}.txt").write_text(
            "".join(f"{stack} {n}\n" for stack, n in stacks.items()))
    shutil.rmtree(tmp, ignore_errors=True)
    per_request = sum(stacks.values()) / max(result["requests"], 1)
    out: dict[str, Any] = {"samples": sum(stacks.values()), "requests": result["requests"],
                           "samples_per_request": per_request, "stages": flame.breakdown(stacks)}
    if out_dir is not None and stacks:
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"flame-{name}.svg"
        target.write_text(flame.svg(stacks, f"APEX worker CPU, {name} requests"))
        out["svg"] = str(target)
    return out


def run_http(bundle: Path, tier: str, *, seconds: float, concurrency: int, workers: int,
             postgres: str | None = None, rounds: int = 3, warm_users: int = 200, expected_rps: int = 250,
             profile_seconds: float = 0.0, flame_dir: Path | None = None, loads: tuple[str, ...] = LOADS
             ) -> dict[str, Any]:
    """Start redis + uvicorn, alternate every load for ``rounds`` rounds, profile each once, stop everything.

    Loads, all on one server through one client: ``raw`` (a constant from a bare ASGI callable, no Django: the
    floor of this server stack), ``django`` (a plain Django view through the site's middleware), ``bare`` (a DRF
    view with the recommendation endpoint's authentication and permission), ``warm`` (returning members),
    ``rated`` (returning members who have just rated a movie: their cached pool is stale), ``cold`` (first
    requests), ``event`` (POST /v1/events, a rating) and ``batch`` (POST /v1/events/batch, 20 ratings).
    ``postgres`` (a server URL such as postgres://postgres@127.0.0.1:5432) gives a scratch PostgreSQL
    database; otherwise SQLite, where concurrent quota writes need a single worker. With ``profile_seconds``,
    each load runs once more under py-spy (every worker sampled) for the per-stage CPU breakdown and a flame
    graph in ``flame_dir``.
    """
    load_at_start = f"{os.getloadavg()[0]:.2f}"
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
           "THROTTLE_ANON": "1000000/min", "THROTTLE_ANON_MODEL": "1000000/min", "DEBUG": "false",
           "SECRET_KEY": "benchmark-only-secret-key-0123456789",
           "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false", "DB_CONN_MAX_AGE": "0",
           "DB_POOL": "true", "PYTHONPATH": str(ROOT)}
    server = None
    # members used once each (first requests, just rated): enough for every run at ``expected_rps``
    n_once = int((rounds * seconds + profile_seconds) * expected_rps / 2) + 300  # these loads run at < half bare's rate
    n_event_users = 100
    try:
        members = _setup_database(env, movie_ids, warm_users + 2 * n_once + n_event_users)
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.serving_asgi:application",
                                   "--host", "127.0.0.1", "--port", str(http_port), "--workers", str(workers),
                                   "--loop", "uvloop", "--http", "httptools",
                                   "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{http_port}"

        def rec(pk: int, raw: str) -> tuple[str, dict[str, str]]:
            return f"{base}/v1/recommendations/user/{pk}?k=10", {"Authorization": f"Api-Key {raw}"}

        def rating(raw: str, n: int) -> dict[str, Any]:
            return {"movie_id": movie_ids[n % len(movie_ids)], "kind": "rating", "value": 4.0,
                    "idempotency_key": f"bench-{raw[:12]}-{n}"}

        warm = [rec(pk, raw) for pk, raw in members[:warm_users]]
        bare = [(f"{base}/bench/bare", headers) for _, headers in warm]
        targets: dict[str, list[Any]] = {
            "raw": [(f"{base}/bench/raw", {})], "django": [(f"{base}/bench/django", {})], "bare": bare, "warm": warm,
            "cold": [rec(pk, raw) for pk, raw in members[warm_users:warm_users + n_once]]}
        rated_members = members[warm_users + n_once:warm_users + 2 * n_once]
        targets["rated"] = [rec(pk, raw) for pk, raw in rated_members]
        event_members = members[warm_users + 2 * n_once:]
        n_events = int((rounds * seconds + profile_seconds) * expected_rps * 4) + 1000
        targets["event"] = [(f"{base}/v1/events", {"Authorization": f"Api-Key {event_members[n % n_event_users][1]}"},
                             rating(event_members[n % n_event_users][1], n)) for n in range(n_events)]
        targets["batch"] = [(f"{base}/v1/events/batch",
                             {"Authorization": f"Api-Key {event_members[n % n_event_users][1]}"},
                             {"events": [rating(event_members[n % n_event_users][1], 10**7 + n * BATCH + j)
                                         for j in range(BATCH)]}) for n in range(n_events // 2)]
        _wait(*warm[0])
        spread = {"workers": workers, "probe": bare[0]}
        for _ in range(2):  # every worker serves every warm member
            asyncio.run(_load(warm, max(seconds, 5.0), concurrency, **spread))
        asyncio.run(_load(bare, 2.0, concurrency, **spread))
        # the rated members: served once (their pools cached), then each rates a movie (unmeasured)
        asyncio.run(_load(targets["rated"], 3600, concurrency, cycle=False, **spread))
        asyncio.run(_load([(f"{base}/v1/events", h, rating(h["Authorization"][8:], 0)) for _, h in targets["rated"]], 3600,
                          concurrency, cycle=False, **spread))
        _apply_stream(env)  # what the Celery worker does: the ratings stored, the online state moved, caches stale
        pids = _server_pids(server, redis)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}
        once = ("rated", "cold", "event", "batch")
        for _ in range(rounds):
            for name in loads:
                used = sum(r["requests"] for r in runs[name]) if name in once else 0
                runs[name].append(_measured(targets[name][used:], seconds, concurrency, pids,
                                            cycle=name not in once, **spread))
        per_round = {name: [r["rps"] / b["rps"] for r, b in zip(runs[name], runs["bare"], strict=True)]
                     for name in loads if name != "bare"}
        # an event's own latency: one client, one request at a time (under the 8-connection load p50 is queueing)
        used = sum(r["requests"] for r in runs.get("event", []))
        single = _measured(targets["event"][used:], seconds, 1, pids, cycle=False, workers=1, probe=bare[0])
        event_single = {"requests": single["requests"], "p50_ms": single["p50_ms"], "p95_ms": single["p95_ms"],
                        "p99_ms": single["p99_ms"], "errors": single["errors"]}
        profiles: dict[str, Any] = {}
        if profile_seconds:
            worker_pids = _worker_pids(server)
            for name in loads:
                used = (sum(r["requests"] for r in runs[name]) + (event_single["requests"] if name == "event" else 0)
                        if name in once else 0)
                profiles[name] = _profile(name, targets[name][used:], profile_seconds, concurrency, worker_pids,
                                          spread, flame_dir / f"tier{tier}" if flame_dir else None)
        return {"tier": tier, "database": "postgresql" if postgres else "sqlite", "workers": workers,
                "concurrency": concurrency, "seconds": seconds, "rounds": rounds, "warm_users": warm_users,
                "batch_size": BATCH, "load_at_start": load_at_start,
                **{name: _pooled(r) for name, r in runs.items()},
                **{f"ratio_{name}": float(np.median(v)) for name, v in per_round.items()},
                "round_ratios": {name: [round(x, 3) for x in values] for name, values in per_round.items()},
                "event_single": event_single, "profiles": profiles}
    finally:
        for proc in (server, redis):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
        if postgres:
            _postgres_database(postgres, db_name, False)


def _apply_stream(env: dict[str, str]) -> None:
    """Apply the events in the stream as the worker would (consume_event_stream), in a separate process."""
    code = (f"import django, sys; sys.path.insert(0, {str(ROOT)!r}); django.setup(); "
            "from recommendations.tasks import consume_event_stream; print(consume_event_stream())")
    subprocess.run([sys.executable, "-c", code], env={**env, "ONLINE_CONSUME_LINGER_S": "0"}, check=True,
                   capture_output=True, text=True)


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
