"""Event times within a window (EVENTS_MIN_OCCURRED_AT .. now + EVENTS_MAX_FUTURE_SKEW_S): absurd dates are 400 (the one validation status)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.models import Rating
from catalog.services import rating_upsert
from events.models import Event
from events.services import event_apply_batch

pytestmark = pytest.mark.django_db


def _rating(movie_id: int, occurred_at: str, key: str = "r") -> dict:
    return {"movie_id": movie_id, "kind": "rating", "value": 4.5, "idempotency_key": key, "occurred_at": occurred_at}


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1994-12-31T23:59:59Z",
                                         "five years ahead", "ten minutes ahead"])
def test_an_absurd_time_is_400_naming_occurred_at_and_never_becomes_a_rating(client, alice, movies, occurred_at):
    now = timezone.now()
    ahead = {"five years ahead": now + dt.timedelta(days=5 * 365), "ten minutes ahead": now + dt.timedelta(minutes=10)}
    when = _iso(ahead[occurred_at]) if occurred_at in ahead else occurred_at
    client.force_login(alice)
    response = client.post("/v1/events", _rating(movies[0].id, when), content_type="application/json")
    assert response.status_code == 400, response.content
    assert "occurred_at" in response.json()
    assert not Event.objects.exists()
    assert not Rating.objects.filter(user=alice).exists()


def test_the_window_edges_are_the_first_of_1995_and_five_minutes_ahead(client, alice, movies):
    client.force_login(alice)
    now = timezone.now()
    statuses = [client.post("/v1/events", _rating(movies[i].id, when, key=f"r{i}"),
                            content_type="application/json").status_code
                for i, when in enumerate(["1995-01-01T00:00:00Z", "1994-12-31T23:59:59Z",
                                          _iso(now + dt.timedelta(seconds=240)), _iso(now + dt.timedelta(seconds=360))])]
    assert statuses == [202, 400, 202, 400]
    assert Event.objects.count() == 2


def test_the_window_is_configurable(client, alice, movies, settings):
    settings.EVENTS_MIN_OCCURRED_AT = "2020-01-01T00:00:00Z"
    settings.EVENTS_MAX_FUTURE_SKEW_S = 3600
    client.force_login(alice)
    old = client.post("/v1/events", _rating(movies[0].id, "2019-06-01T00:00:00Z", "a"), content_type="application/json")
    soon = _iso(timezone.now() + dt.timedelta(minutes=30))
    ahead = client.post("/v1/events", _rating(movies[1].id, soon, "b"), content_type="application/json")
    assert (old.status_code, ahead.status_code) == (400, 202)


def test_a_batch_names_the_position_of_the_bad_time_and_stores_nothing(client, alice, movies):
    client.force_login(alice)
    events = [_rating(movies[0].id, "2024-05-01T00:00:00Z", "a"), _rating(movies[1].id, "9999-12-31T00:00:00Z", "b")]
    response = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"events.1.occurred_at"}
    assert not Event.objects.exists()


def test_the_rating_service_refuses_times_outside_the_window(alice, movies):
    with pytest.raises(ValidationError, match="rated_at"):
        rating_upsert(user=alice, movie=movies[0], value=4.0, rated_at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(ValidationError, match="rated_at"):
        rating_upsert(user=alice, movie=movies[0], value=4.0, rated_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC))
    assert not Rating.objects.filter(user=alice).exists()


def test_a_stored_event_with_an_absurd_time_is_applied_without_becoming_a_rating(alice, movies):
    absurd = Event.objects.create(user=alice, movie=movies[0], kind="rating", value=5.0, idempotency_key="old",
                                  occurred_at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    fine = Event.objects.create(user=alice, movie=movies[1], kind="rating", value=3.0, idempotency_key="new",
                                occurred_at=timezone.now())
    applied = event_apply_batch(event_ids=[str(absurd.id), str(fine.id)], apply=lambda events: None)
    assert len(applied.events) == 2
    assert list(Rating.objects.filter(user=alice).values_list("movie_id", flat=True)) == [movies[1].id]
