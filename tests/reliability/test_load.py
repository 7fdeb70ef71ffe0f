"""A bounded loopback load (issue 14): 60 s of locust against a real uvicorn server on the test database.

Twenty simulated partner apps read the catalog, ask for recommendations and post events with an API key
(tests/reliability/locustfile.py). The site must answer every request: no 5xx, no connection error, no
unexpected 4xx. Latencies are recorded, not asserted (no timed assertions): docs/RELIABILITY.md compares
the p99 with ``SLO_P99_MS``. 429 would mean the load outgrew the member's allowance; it is counted apart.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.events.processes import REPO, database_url, free_port, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

USERS, SPAWN_RATE = 20, 10
SECONDS = int(os.environ.get("APEX_LOAD_SECONDS", "60"))


@pytest.fixture
def load_world(serving_bundle: Path, tmp_path: Path, plans):  # noqa: ANN001, ANN201
    """A verified Enterprise member with ratings and an API key, and the tiny bundle's movies."""
    import datetime as dt

    from allauth.account.models import EmailAddress

    from accounts.services import api_key_create
    from billing.services import account_plan_set
    from catalog.models import Movie
    from tests.factories import MovieFactory, RatingFactory, UserFactory
    from tests.ml_core.serving_bundle import tiny_metadata

    shutil.copytree(serving_bundle, tmp_path / "artifacts" / "serving")
    for movie_id, meta in tiny_metadata().items():
        MovieFactory(id=movie_id, title=meta["title"], year=meta["year"], overview=meta["overview"],
                     genres=meta["genres"])
    user = UserFactory(username="loadtester", email="load@example.com")
    EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    account_plan_set(user=user, plan=plans["enterprise"], subscription_id="sub_1QLoadEnt000000000000000",
                     status="active")
    for i, movie_id in enumerate((101, 102, 103)):
        RatingFactory(user=user, movie=Movie.objects.get(id=movie_id), value=5.0,
                      rated_at=dt.datetime(2024, 1, 1 + i, tzinfo=dt.UTC))
    _, raw = api_key_create(user=user, name="load test")
    return {"user": user, "key": raw, "movies": sorted(tiny_metadata()), "artifacts": tmp_path / "artifacts"}


@pytest.fixture
def live_server_process(load_world, tmp_path: Path):  # noqa: ANN001, ANN201
    """uvicorn serving the ASGI app, as bin/run starts it, on this test's database and Redis."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": django_settings.REDIS_URL,
           "DJANGO_SETTINGS_MODULE": "apex_site.settings", "SECRET_KEY": django_settings.SECRET_KEY,
           # production settings (DEBUG off, the connection pool), over plain HTTP on the loopback
           "DEBUG": "false", "SECURE_SSL_REDIRECT": "false", "DB_POOL": "true",
           "ML_ARTIFACTS_DIR": str(load_world["artifacts"]),
           # the member's allowance is far above the load: a 429 would be a finding, not the plan working
           "THROTTLE_BURST": "1000000/min", "THROTTLE_ANON": "1000000/min", "THROTTLE_ANON_MODEL": "1000000/min",
           "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "apex_site.asgi:application", "--host",
                                 "127.0.0.1", "--port", str(port), "--no-access-log"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/v1/platform/status") or proc.poll() is not None, timeout=90,
                 what="uvicorn to start")
        assert proc.poll() is None, log.read_text()[-3000:]
        yield url, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


def test_sixty_seconds_of_mixed_load_get_no_errors(load_world, live_server_process, tmp_path: Path,  # noqa: ANN001
                                                    probe) -> None:  # noqa: ANN001
    url, server_log = live_server_process
    warm_up = urllib.request.Request(f"{url}/v1/recommendations/id/101",
                                     headers={"Authorization": f"Api-Key {load_world['key']}"})
    with urllib.request.urlopen(warm_up, timeout=120) as r:  # noqa: S310 - loads the engine before the clock runs
        assert r.status == 200
    counts_path, csv_prefix = tmp_path / "counts.json", tmp_path / "load"
    env = {**os.environ, "APEX_LOAD_KEY": load_world["key"], "APEX_LOAD_USER": str(load_world["user"].pk),
           "APEX_LOAD_MOVIES": ",".join(map(str, load_world["movies"])), "APEX_LOAD_COUNTS": str(counts_path)}
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
         "-u", str(USERS), "-r", str(SPAWN_RATE), "-t", f"{SECONDS}s", "--host", url, "--csv", str(csv_prefix),
         "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=SECONDS + 120)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = json.loads(counts_path.read_text())
    samples = counts.pop("samples", [])
    with open(f"{csv_prefix}_stats.csv", encoding="utf-8") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    total = rows["Aggregated"]
    server_errors = sum(n for k, n in counts.items() if k.startswith("status 5"))
    too_many = counts.get("status 429", 0)
    refused = sum(n for k, n in counts.items() if k.startswith("status 4")) - too_many
    connection_errors = counts.get("connection_errors", 0)
    probe.record("loopback load", sent=counts["sent"], server_errors=server_errors,
                 failures=refused + connection_errors, throttled_429=too_many, connection_errors=connection_errors,
                 users=USERS, seconds=SECONDS, rps=round(float(total["Requests/s"]), 1),
                 p50_ms=float(total["50%"]), p95_ms=float(total["95%"]), p99_ms=float(total["99%"]),
                 slo_p99_ms=django_settings.SLO_TARGETS_MS["p99"],
                 **{f"p99_ms {name}": float(row["99%"]) for name, row in rows.items() if name != "Aggregated"})
    assert counts["sent"] > USERS * SECONDS // 2, counts  # the load really ran (at least ~0.5 request/s a user)
    assert server_errors == 0 and connection_errors == 0, "\n".join([str(counts), *samples, server_log.read_text()[-3000:]])
    assert refused == 0, (counts, samples, run.stdout[-3000:])
