"""Served impressions: one XADD per list, stored from the stream with their propensities, never dropped."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from events import impressions
from events.models import Event
from events.services import impression_enqueue
from events.stream import stream_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def impression_stream(settings):  # noqa: ANN001, ANN201
    """A scratch impression stream in the Redis of REDIS_URL (skipped without one)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL")
    settings.REDIS_URL, settings.IMPRESSIONS_STREAM = url, "apex:test-impressions"
    stream_client().delete("apex:test-impressions")
    yield stream_client()
    stream_client().delete("apex:test-impressions")


def _serve(user, movies, request_id="req-1"):  # noqa: ANN001, ANN202
    return impression_enqueue(user=user, movie_ids=[m.id for m in movies[:3]], propensities=[0.5, 0.25, 0.125],
                              positions=[0, 1, 2], policy_version="pl-1", request_id=request_id)


def _logged(user, request_id="req-1"):  # noqa: ANN001, ANN202
    rows = Event.objects.filter(user=user, kind="impression", request_id=request_id).order_by("position")
    return [(e.movie_id, e.propensity, e.position, e.policy_version) for e in rows]


@pytest.mark.services
def test_a_served_list_is_one_stream_entry_stored_later_with_its_propensities(alice, movies, impression_stream):
    before = dt.datetime.now(dt.UTC)
    assert _serve(alice, movies) == "stream"
    assert _logged(alice) == [] and impression_stream.xlen("apex:test-impressions") == 1

    assert impressions.impressions_store() == 3

    assert _logged(alice) == [(movies[0].id, 0.5, 0, "pl-1"), (movies[1].id, 0.25, 1, "pl-1"),
                              (movies[2].id, 0.125, 2, "pl-1")]
    served = Event.objects.filter(user=alice, kind="impression").values_list("occurred_at", flat=True)
    assert all(abs((t - before).total_seconds()) < 60 for t in served)  # when served, not when stored
    assert impressions.impressions_store() == 0 and impression_stream.xlen("apex:test-impressions") == 0


@pytest.mark.services
def test_a_list_left_pending_by_a_dead_storer_is_reclaimed_and_stored_once(alice, movies, impression_stream,
                                                                           monkeypatch):
    _serve(alice, movies)
    impressions._ensure_group(impression_stream)
    impression_stream.xreadgroup(impressions.GROUP, "dead-worker", {"apex:test-impressions": ">"}, count=10)
    assert impressions.impressions_store() == 0  # delivered to the dead worker, not idle long enough yet

    monkeypatch.setattr(impressions, "RECLAIM_IDLE_MS", 0)
    impressions.impressions_store()

    assert len(_logged(alice)) == 3
    _serve(alice, movies)  # the same request delivered again: idempotent by request id and position
    impressions.impressions_store()
    assert Event.objects.filter(user=alice, kind="impression").count() == 3


@pytest.mark.services
def test_a_database_error_leaves_the_list_pending(alice, movies, impression_stream, monkeypatch):
    _serve(alice, movies)

    def broken(fields):  # noqa: ANN001, ANN202
        raise RuntimeError("database went away")

    monkeypatch.setattr(impressions, "_store", broken)
    with pytest.raises(RuntimeError):
        impressions.impressions_store()
    assert impression_stream.xpending("apex:test-impressions", impressions.GROUP)["pending"] == 1

    monkeypatch.undo()
    monkeypatch.setattr(impressions, "RECLAIM_IDLE_MS", 0)
    impressions.impressions_store()
    assert len(_logged(alice)) == 3


def test_when_redis_is_down_the_list_is_stored_in_the_request(alice, movies, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert _serve(alice, movies) == "database"
    assert _logged(alice) == [(movies[0].id, 0.5, 0, "pl-1"), (movies[1].id, 0.25, 1, "pl-1"),
                              (movies[2].id, 0.125, 2, "pl-1")]


def test_without_redis_the_list_is_stored_in_the_request(alice, movies, settings):
    settings.REDIS_URL = ""
    assert _serve(alice, movies) == "database"
    assert len(_logged(alice)) == 3
    assert impressions.impressions_store() == 0
