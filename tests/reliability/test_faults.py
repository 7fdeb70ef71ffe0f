"""Faults besides Redis (test_redis_outage.py): a Celery worker SIGKILLed mid-batch, PostgreSQL connections exhausted.

- The worker dies inside the applying transaction; more events arrive while it is dead; a restarted worker
  reclaims the batch: every accepted event is stored and applied exactly once.
- Every connection of a small pool (``DB_POOL``) is held: requests get 503 with ``Retry-After``, not a 500,
  and are served again once the connections come back.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections
from django.test import Client

from events.models import Event
from events.services import APPLY_LOCK_ID
from events.stream import stream_client, stream_pending_count
from recommendations.models import OnlineCheckpoint
from tests.events.processes import celery_worker, wait_for
from tests.factories import MovieFactory
from tests.reliability.servers import small_pool

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stream(needs_postgres, settings):  # noqa: ANN001, ANN201
    """A stream of this test's own on the configured Redis (the workers' broker); deleted afterwards."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    from apex_site.celery import app

    settings.EVENTS_STREAM = name = f"apex:test:{uuid.uuid4().hex[:8]}"
    app.control.purge()
    client = stream_client()
    yield name
    client.delete(name, *client.keys(f"{name}:*"))
    app.control.purge()


def _apply_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
                       [APPLY_LOCK_ID])
        return cursor.fetchone()[0] > 0


def _post(client: Client, movies: list, prefix: str) -> int:  # noqa: ANN001
    events = [{"movie_id": m.id, "kind": "rating", "value": 4.5, "idempotency_key": f"{prefix}-{m.id}"} for m in movies]
    return client.post("/v1/events/batch", {"events": events}, content_type="application/json").status_code


def test_a_worker_sigkilled_mid_batch_applies_every_accepted_event_once_after_restart(
        client, alice, stream, tmp_path, probe):  # noqa: ANN001
    from recommendations.tasks import consume_event_stream

    movies = [MovieFactory() for _ in range(40)]
    client.force_login(alice)
    with celery_worker("victim", env={"EVENTS_STREAM": stream, "FAULT_APPLY_DELAY_S": "120"},
                       log=tmp_path / "victim.log") as victim:
        statuses = [_post(client, movies[:30], "a")]
        wait_for(_apply_lock_held, timeout=60, what="the worker to be inside the applying transaction")
        victim.kill()
        victim.wait(timeout=30)
    statuses.append(_post(client, movies[30:], "b"))  # while no worker runs
    wait_for(lambda: not _apply_lock_held(), timeout=60, what="PostgreSQL to abort the dead worker's transaction")
    applied_before_restart = Event.objects.filter(applied_at__isnull=False).count()

    env = {"EVENTS_STREAM": stream, "EVENTS_RECLAIM_IDLE_MS": "200"}
    with celery_worker("restarted", env=env, log=tmp_path / "restarted.log"):
        def drained() -> bool:
            consume_event_stream.apply_async()
            return Event.objects.filter(applied_at__isnull=True).count() == 0 and stream_pending_count() == 0

        wait_for(drained, timeout=120, interval=0.5, what="the restarted worker to apply and ack everything")
    stored = Event.objects.count()
    applied = Event.objects.filter(applied_at__isnull=False).count()
    counted = sum(OnlineCheckpoint.objects.values_list("events_applied", flat=True))
    probe.record("worker SIGKILL mid-batch", sent=40, server_errors=sum(s >= 500 for s in statuses),
                 failures=abs(40 - stored) + abs(40 - applied) + abs(counted - applied),
                 accepted=40 if statuses == [202, 202] else 0, stored=stored, applied=applied)
    assert statuses == [202, 202] and applied_before_restart == 0
    assert stored == applied == counted == 40


def test_exhausted_database_connections_get_503_with_retry_after_and_recover(
        needs_postgres, alice, api_key_for_alice, probe):  # noqa: ANN001
    movie = MovieFactory()
    results: dict[str, list] = {"exhausted": [], "recovered": []}

    def requests(phase: str, pool) -> None:  # noqa: ANN001
        connections["default"] = wrapper = pool.wrapper()  # this thread's requests borrow from the small pool
        try:
            machine = Client(raise_request_exception=False, **api_key_for_alice.headers)
            anonymous = Client(raise_request_exception=False)
            for i in range(3):
                results[phase].append(machine.post("/v1/events", {"movie_id": movie.id, "kind": "click",
                                                                  "idempotency_key": f"{phase}-{i}"},
                                                   content_type="application/json"))
            results[phase].append(anonymous.get(f"/v1/movies/{movie.id}"))
        finally:
            wrapper.close()

    def run(phase: str, pool) -> None:  # noqa: ANN001
        thread = threading.Thread(target=requests, args=(phase, pool))
        thread.start()
        thread.join(timeout=120)

    with small_pool(size=2, timeout_s=0.5) as pool:
        held = [pool.pool.getconn() for _ in range(2)]
        run("exhausted", pool)
        for conn in held:
            pool.pool.putconn(conn)
        run("recovered", pool)

    exhausted, recovered = results["exhausted"], results["recovered"]
    statuses = [r.status_code for r in exhausted + recovered]
    probe.record("postgres connections exhausted", sent=len(statuses), server_errors=sum(s >= 500 and s != 503
                                                                                          for s in statuses),
                 failures=sum(r.status_code != 503 or not r.has_header("Retry-After") for r in exhausted)
                 + sum(r.status_code >= 400 for r in recovered),
                 refused_503=sum(r.status_code == 503 for r in exhausted), recovered=len(recovered))
    assert [r.status_code for r in exhausted] == [503] * 4, [r.content[:200] for r in exhausted]
    assert all(int(r["Retry-After"]) > 0 for r in exhausted)
    assert exhausted[0].json()["code"] == "service_unavailable"
    assert [r.status_code for r in recovered] == [202, 202, 202, 200]
    assert Event.objects.count() == 3  # only the recovered requests stored events
