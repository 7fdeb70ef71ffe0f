"""Live burst probe, run by benchmarks/live_probe.sh against bin/run (PostgreSQL + its own Redis on :6391).

Posts N single events (default 6,000) with an API key from 8 threads; a quarter of the way in Redis is shut
down without saving (the stream is lost) and started again, half way the Celery worker is SIGKILLed and a new
one started, at three quarters Redis restarts again. Then it waits until every stored event is applied and
prints one JSON line: sent, accepted (202), stored, applied, duplicate idempotency keys, 5xx, and the probe
database's connections by state.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:8765"
PROBE_DIR = Path(os.environ.get("PROBE_DIR", "/tmp/probe"))
REDIS_PORT = "6391"


def post(url: str, headers: dict[str, str], movie_id: int, statuses: Counter) -> str | None:
    """One event; retried on connection errors and 429 (the same idempotency key, so never stored twice)."""
    body = {"movie_id": movie_id, "kind": "click", "idempotency_key": f"burst-{uuid.uuid4().hex}"}
    for _attempt in range(5):
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=30)
        except httpx.HTTPError:
            statuses["connection error"] += 1
            time.sleep(0.2)
            continue
        statuses[response.status_code] += 1
        if response.status_code == 202:
            return response.json()["id"]
        if response.status_code != 429:
            return None
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return None


def restart_redis() -> str:
    subprocess.run(["redis-cli", "-p", REDIS_PORT, "shutdown", "nosave"], capture_output=True)
    time.sleep(2)
    subprocess.run(["redis-server", "--port", REDIS_PORT, "--save", "", "--appendonly", "no", "--daemonize", "yes",
                    "--logfile", str(PROBE_DIR / "redis.log")], check=True)
    return "redis restarted empty"


def kill_worker() -> str:
    """SIGKILL this probe's Celery workers (those pointed at its Redis) and start a new one."""
    pids = subprocess.run(["pgrep", "-f", "celery -A apex_site worker"], capture_output=True, text=True).stdout.split()
    pids = [pid for pid in pids if f"127.0.0.1:{REDIS_PORT}".encode() in Path(f"/proc/{pid}/environ").read_bytes()]
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    time.sleep(1)
    subprocess.Popen([str(ROOT / ".venv/bin/celery"), "-A", "apex_site", "worker", "--loglevel=WARNING",
                      "--concurrency=1"], stdout=open(PROBE_DIR / "worker2.log", "w"), stderr=subprocess.STDOUT,
                     cwd=ROOT)
    return f"{len(pids)} worker processes SIGKILLed, one restarted"


def main(n: int) -> None:
    headers = {"Authorization": f"Api-Key {(PROBE_DIR / 'key').read_text().strip()}"}
    uid = int((PROBE_DIR / "uid").read_text())
    db = psycopg.connect("postgresql://postgres@127.0.0.1:5432/apex_probe", autocommit=True)
    movies = [row[0] for row in db.execute("select id from catalog_movie order by id limit 2000")]
    count_sql = "select count(*), count(applied_at) from events_event where user_id=%s"
    stored_before, applied_before = db.execute(count_sql, (uid,)).fetchone()
    faults = {n // 4: restart_redis, n // 2: kill_worker, 3 * n // 4: restart_redis}
    statuses: Counter = Counter()
    ids: list[str | None] = []
    start = time.time()
    with cf.ThreadPoolExecutor(8) as pool:
        futures: list[cf.Future] = []
        for i in range(n):
            if i in faults:
                ids += [f.result() for f in futures]
                futures = []
                print("fault:", faults[i](), flush=True)
            futures.append(pool.submit(post, f"{BASE}/v1/events", headers, movies[i % len(movies)], statuses))
        ids += [f.result() for f in futures]
    burst_s = time.time() - start
    deadline = time.time() + 600
    while time.time() < deadline:
        stored, applied = db.execute(count_sql, (uid,)).fetchone()
        if applied >= stored:
            break
        time.sleep(5)
    stored, applied = db.execute(count_sql, (uid,)).fetchone()
    duplicates = db.execute("select count(*) from (select idempotency_key from events_event where user_id=%s "
                            "group by 1 having count(*) > 1) d", (uid,)).fetchone()[0]
    connections = db.execute("select state, count(*) from pg_stat_activity where datname='apex_probe' "
                             "group by 1").fetchall()
    print(json.dumps({
        "sent": n, "accepted_202": sum(1 for i in ids if i), "stored": stored - stored_before,
        "applied": applied - applied_before, "duplicate_keys": duplicates,
        "server_errors": sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500),
        "statuses": {str(k): v for k, v in statuses.items()}, "burst_s": round(burst_s),
        "all_applied_after_s": round(time.time() - start), "pg_connections": connections}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6000)
