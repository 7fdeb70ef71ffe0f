"""Redis stopped and restarted empty (a redis-server of the test's own): nothing answers 5xx, nothing is lost.

- Redis down: single and batch events are accepted (202) into the PostgreSQL outbox, API-key requests are
  authenticated from the database, the recommendation endpoint computes without its caches.
- Redis back, empty (the stream and its consumer group gone): one relay run (the beat task, which schedules
  the consumer) relays the whole backlog, including events the lost stream held, and each is applied once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from events.models import Event
from recommendations.models import OnlineCheckpoint
from tests.factories import MovieFactory, RatingFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def serving(serve_tiny):  # noqa: ANN001, ANN201
    """The tiny serving bundle (a private copy) with the catalog movies it knows, Tier 1 on CPU."""
    return serve_tiny("1").parent


def _applied_once() -> tuple[int, int]:
    """(events applied, events counted by the learner's checkpoints): equal when none was applied twice."""
    applied = Event.objects.filter(applied_at__isnull=False).count()
    return applied, sum(OnlineCheckpoint.objects.values_list("events_applied", flat=True))


def _hold_consumers(redis_server) -> None:  # noqa: ANN001
    """Tell producers a consume run is already scheduled, so events stay in the stream until the test runs one."""
    import redis

    from events.stream import stream_key
    from recommendations.tasks import CONSUME_SCHEDULED

    redis.Redis.from_url(redis_server.url).set(stream_key(CONSUME_SCHEDULED), "1", px=600_000)


def test_with_redis_stopped_events_api_keys_and_recommendations_answer_without_5xx(
        own_redis, serving, alice, api_key_for_alice, probe):  # noqa: ANN001
    from catalog.models import Movie
    from recommendations.tasks import relay_event_outbox

    movies = list(Movie.objects.order_by("id"))
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i, movie in enumerate(movies[:3]):
        RatingFactory(user=alice, movie=movie, value=5.0, rated_at=base + dt.timedelta(days=i))
    machine = Client(raise_request_exception=False, **api_key_for_alice.headers)
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    recs_url = f"/v1/recommendations/user/{alice.pk}?k=5"
    assert machine.get(recs_url).status_code == 200  # Redis up: the key, versions and history get cached

    own_redis.stop()
    statuses: list[int] = []
    sent_events = 0
    for i, movie in enumerate(movies[3:8]):
        who = machine if i % 2 else browser
        statuses.append(who.post("/v1/events", {"movie_id": movie.id, "kind": "click", "idempotency_key": f"one-{i}"},
                                 content_type="application/json").status_code)
        sent_events += 1
    batch = [{"movie_id": m.id, "kind": "rating", "value": 4.0, "idempotency_key": f"batch-{m.id}"}
             for m in movies[8:18]]
    statuses.append(machine.post("/v1/events/batch", {"events": batch}, content_type="application/json").status_code)
    sent_events += len(batch)
    event_statuses = list(statuses)
    for _ in range(3):
        response = machine.get(recs_url)
        statuses.append(response.status_code)
        assert response.status_code != 200 or len(response.json()["items"]) == 5
    statuses.append(machine.get("/v1/billing/usage").status_code)

    stored_while_down = Event.objects.exclude(kind="impression").count()
    unrelayed = Event.objects.filter(relayed_at__isnull=True).count()
    own_redis.start()  # empty: no stream, no group, no cached keys or counters
    relay_event_outbox()  # one beat run: relays the outbox and (Celery inline here) consumes the stream
    applied, counted = _applied_once()
    total = Event.objects.count()
    server_errors = sum(s >= 500 for s in statuses)
    probe.record("redis outage: requests", sent=len(statuses), server_errors=server_errors,
                 failures=sum(s not in (200, 202) for s in statuses))
    applied_sent = Event.objects.exclude(kind="impression").filter(applied_at__isnull=False).count()
    probe.record("redis outage: events", sent=sent_events, server_errors=sum(s >= 500 for s in event_statuses),
                 failures=abs(total - applied) + abs(counted - applied) + abs(sent_events - applied_sent),
                 accepted=sent_events if event_statuses == [202] * len(event_statuses) else 0,
                 stored=stored_while_down, applied=applied_sent, impressions_stored=total - stored_while_down)
    assert server_errors == 0, statuses
    assert event_statuses == [202] * 6 and stored_while_down == sent_events
    assert statuses[6:] == [200] * 4  # recommendations computed without the caches; usage from the database
    assert unrelayed == total  # every row (impressions stored by the requests too) waited in the outbox
    assert applied == counted == total  # all applied, each once


def test_a_redis_restart_that_lost_the_stream_replays_the_backlog_in_one_relay_run(own_redis, alice, probe):  # noqa: ANN001
    from recommendations.tasks import relay_event_outbox

    movies = [MovieFactory() for _ in range(30)]
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    statuses: list[int] = []

    def post(batch) -> None:  # noqa: ANN001
        for movie in batch:
            statuses.append(browser.post("/v1/events", {"movie_id": movie.id, "kind": "click",
                                                        "idempotency_key": f"k-{movie.id}"},
                                         content_type="application/json").status_code)

    _hold_consumers(own_redis)
    post(movies[:10])  # relayed into the stream, not yet consumed
    own_redis.stop()
    post(movies[10:20])  # Redis down: into the outbox only
    own_redis.start()  # empty: the first ten are gone from the stream, with the consumer group
    _hold_consumers(own_redis)
    post(movies[20:])  # relayed into the new stream
    assert Event.objects.filter(relayed_at__isnull=False, applied_at__isnull=True).count() == 20

    relay_event_outbox()  # one beat run, not EVENTS_REDELIVER_AFTER_S (300 s) later
    applied, counted = _applied_once()
    probe.record("redis restarted empty: backlog", sent=30, server_errors=sum(s >= 500 for s in statuses),
                 failures=abs(30 - applied) + abs(counted - applied), accepted=statuses.count(202),
                 stored=Event.objects.count(), applied=applied, relay_runs=1)
    assert statuses == [202] * 30
    assert applied == counted == 30


def test_the_first_event_after_a_restart_that_lost_the_stream_brings_the_backlog_with_it(own_redis, alice, probe):  # noqa: ANN001
    movies = [MovieFactory() for _ in range(11)]
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    _hold_consumers(own_redis)
    statuses = [browser.post("/v1/events", {"movie_id": m.id, "kind": "click", "idempotency_key": f"k-{m.id}"},
                             content_type="application/json").status_code for m in movies[:10]]
    own_redis.stop()
    own_redis.start()  # empty, and no consume run is scheduled or reading
    last = movies[10]
    statuses.append(browser.post("/v1/events", {"movie_id": last.id, "kind": "click", "idempotency_key": "after"},
                                 content_type="application/json").status_code)  # schedules a consume run (inline)
    applied, counted = _applied_once()
    probe.record("redis restarted empty: next event", sent=11, server_errors=sum(s >= 500 for s in statuses),
                 failures=abs(11 - applied) + abs(counted - applied), accepted=statuses.count(202),
                 stored=Event.objects.count(), applied=applied, relay_runs=0)
    assert statuses == [202] * 11
    assert applied == counted == 11  # the consume run noticed the lost stream and replayed the outbox first
