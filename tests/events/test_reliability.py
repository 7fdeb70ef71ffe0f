"""Fault tests on real PostgreSQL + Redis with real Celery worker processes (marked ``services``).

- a worker killed in the middle of a batch (inside the applying transaction) or after committing but
  before acking: a second worker reclaims the entries and every event is applied exactly once;
- Redis stopped and restarted while events arrive: all accepted, none lost, all relayed and applied;
- the same idempotency key replayed concurrently: one event.
"""

from __future__ import annotations

import io
import threading
import uuid

import numpy as np
import pytest
from django.db import connection, connections

from catalog.models import Rating
from events.models import Event
from events.services import APPLY_LOCK_ID
from events.stream import stream_client, stream_pending_count
from recommendations.models import OnlineCheckpoint
from tests.events.processes import PrivateRedis, celery_worker, wait_for
from tests.factories import MovieFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
N_EVENTS = 30


@pytest.fixture
def stream(settings):  # noqa: ANN001, ANN201
    """A stream of this test's own (workers get its name), on the configured Redis; deleted afterwards."""
    if not settings.REDIS_URL or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs REDIS_URL and a PostgreSQL DATABASE_URL")
    from apex_site.celery import app

    settings.EVENTS_STREAM = name = f"apex:test:{uuid.uuid4().hex[:8]}"
    app.control.purge()
    client = stream_client()  # the shared server, even if the test points REDIS_URL elsewhere
    yield name
    client.delete(name, *client.keys(f"{name}:*"))
    app.control.purge()  # consume requests nobody ran (no worker in that test)


def _post_ratings(client, user, movies) -> list[str]:  # noqa: ANN001
    client.force_login(user)
    events = [{"movie_id": m.id, "kind": "rating", "value": 5.0, "idempotency_key": f"r-{m.id}"} for m in movies]
    response = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 202, response.content
    return [e["id"] for e in response.json()["events"]]


def _applied() -> int:
    return Event.objects.filter(applied_at__isnull=False).count()


def _apply_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted",
                       [APPLY_LOCK_ID])
        return cursor.fetchone()[0] > 0


def _learned_positives() -> float:
    """Positive interactions counted by the learner's newest checkpoint (double-applied events would inflate it)."""
    latest = OnlineCheckpoint.objects.order_by("-id").first()
    with np.load(io.BytesIO(bytes(latest.state)), allow_pickle=False) as state:
        return float(state["item_counts"].sum())


def _rescue(stream: str, tmp_path) -> None:  # noqa: ANN001
    """A second worker that reclaims idle entries; poke it until the stream has nothing pending."""
    from recommendations.tasks import consume_event_stream

    env = {"EVENTS_STREAM": stream, "EVENTS_RECLAIM_IDLE_MS": "200"}
    with celery_worker("rescuer", env=env, log=tmp_path / "rescuer.log"):
        def drained() -> bool:
            consume_event_stream.apply_async()
            return _applied() == N_EVENTS and stream_pending_count() == 0

        wait_for(drained, timeout=120, interval=0.5, what="the rescuer to apply and ack everything")


def test_a_worker_killed_inside_the_applying_transaction_loses_nothing_and_doubles_nothing(
        client, alice, stream, tmp_path):
    movies = [MovieFactory() for _ in range(N_EVENTS)]
    env = {"EVENTS_STREAM": stream, "FAULT_APPLY_DELAY_S": "120"}
    with celery_worker("victim", env=env, log=tmp_path / "victim.log") as victim:
        _post_ratings(client, alice, movies)
        wait_for(_apply_lock_held, timeout=60, what="the victim to be inside the applying transaction")
        assert stream_pending_count() > 0  # delivered to the victim, not acknowledged
        victim.kill()
        victim.wait(timeout=30)
    wait_for(lambda: not _apply_lock_held(), timeout=60, what="PostgreSQL to abort the dead worker's transaction")
    assert _applied() == 0 and not OnlineCheckpoint.objects.exists()
    _rescue(stream, tmp_path)
    assert Rating.objects.filter(user=alice).count() == N_EVENTS
    assert sum(OnlineCheckpoint.objects.values_list("events_applied", flat=True)) == N_EVENTS
    assert _learned_positives() == N_EVENTS


def test_a_worker_killed_after_commit_but_before_ack_is_not_applied_twice(client, alice, stream, tmp_path):
    movies = [MovieFactory() for _ in range(N_EVENTS)]
    env = {"EVENTS_STREAM": stream, "FAULT_ACK_DELAY_S": "120"}
    with celery_worker("victim", env=env, log=tmp_path / "victim.log") as victim:
        _post_ratings(client, alice, movies)
        wait_for(lambda: _applied() == N_EVENTS, timeout=60, what="the victim to commit the batch")
        assert stream_pending_count() > 0  # applied, not acknowledged
        victim.kill()
        victim.wait(timeout=30)
    checkpoints = OnlineCheckpoint.objects.count()
    _rescue(stream, tmp_path)
    assert OnlineCheckpoint.objects.count() == checkpoints  # the redelivered entries applied nothing
    assert _learned_positives() == N_EVENTS


def test_redis_stopped_and_restarted_while_events_arrive_loses_nothing(client, alice, stream, settings, tmp_path):
    from recommendations.online.consumer import online_consume_stream
    from recommendations.tasks import relay_event_outbox

    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    settings.REDIS_URL = redis_server.url  # the stream lives on our own server; the shared one is never touched
    movies = [MovieFactory() for _ in range(N_EVENTS)]
    client.force_login(alice)
    statuses, ids = [], []

    def post(movie) -> None:  # noqa: ANN001
        response = client.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": str(movie.id)},
                               content_type="application/json")
        statuses.append(response.status_code)
        ids.append(response.json()["id"])

    try:
        for movie in movies[:10]:
            post(movie)
        redis_server.stop()
        for movie in movies[10:20]:
            post(movie)
        assert Event.objects.filter(relayed_at__isnull=True).count() == 10
        redis_server.start()
        for movie in movies[20:]:
            post(movie)
        assert relay_event_outbox() == 10  # the beat task's run
        assert statuses == [202] * N_EVENTS
        assert not Event.objects.filter(relayed_at__isnull=True).exists()
        in_stream = [i for _, fields in stream_client().xrange(stream) for i in fields["event_ids"].split(",")]
        assert sorted(in_stream) == sorted(ids)  # every event once, none lost across the restart
        assert online_consume_stream(consumer="test") == N_EVENTS
        assert _learned_positives() == N_EVENTS
    finally:
        redis_server.stop()


def test_a_lingering_consumer_applies_an_event_posted_while_it_waits(client, alice, stream):
    import time

    from recommendations.online.consumer import online_consume_stream

    movie = MovieFactory()
    client.force_login(alice)
    applied: list[int] = []

    def consume() -> None:
        try:
            applied.append(online_consume_stream(consumer="lingerer", linger_s=2.0))
        finally:
            connections.close_all()

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.5)  # the stream is empty: the consumer is waiting on its blocking read
    response = client.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": "late"},
                           content_type="application/json")
    consumer.join(timeout=60)
    assert response.status_code == 202 and applied == [1]
    assert Event.objects.get(id=response.json()["id"]).applied_at is not None
    assert stream_pending_count() == 0


def test_events_the_stream_lost_are_relayed_again(client, alice, stream, settings):
    from datetime import timedelta

    from django.utils import timezone

    from events.services import event_outbox_relay

    movie = MovieFactory()
    client.force_login(alice)
    client.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": "lost"},
                content_type="application/json")
    stream_client().delete(stream)  # e.g. Redis restarted without persistence
    Event.objects.update(relayed_at=timezone.now() - timedelta(hours=1))
    settings.EVENTS_REDELIVER_AFTER_S = 60
    assert event_outbox_relay() == 1
    assert stream_client().xlen(stream) == 1


def test_concurrent_replays_of_one_idempotency_key_store_one_event(alice, stream):
    from django.test import Client

    movie = MovieFactory()
    barrier, results = threading.Barrier(6), []

    def replay() -> None:
        try:
            http = Client()
            http.force_login(alice)
            barrier.wait(timeout=30)
            response = http.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": "same"},
                                 content_type="application/json")
            results.append((response.status_code, response.json()["id"]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 6 and {status for status, _ in results} == {202}
    assert len({event_id for _, event_id in results}) == 1
    assert Event.objects.count() == 1
