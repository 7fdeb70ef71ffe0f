"""Idempotency keys are bound to the event's fields: the same body replays (202), a different body is 409."""

from __future__ import annotations

import pytest

from events.models import Event
from events.services import EventInput, IdempotencyConflict, event_record_batch

pytestmark = pytest.mark.django_db


def _post(client, path: str, body: dict):  # noqa: ANN001, ANN202
    return client.post(path, body, content_type="application/json")


def test_the_same_body_under_the_same_key_replays_the_first_event(client, alice, movies):
    client.force_login(alice)
    body = {"movie_id": movies[0].id, "kind": "rating", "value": 4, "idempotency_key": "same",
            "occurred_at": "2026-01-02T03:04:05Z"}
    first = _post(client, "/v1/events", body).json()
    again = _post(client, "/v1/events", {**body, "value": 4.0, "occurred_at": "2026-01-02T04:04:05+01:00"})
    assert again.status_code == 202
    assert again.json() == {"id": first["id"], "status": "accepted", "replayed": True}
    changed = _post(client, "/v1/events", {**body, "occurred_at": "2026-01-02T03:04:06Z"})
    assert changed.status_code == 409
    assert Event.objects.count() == 1


def test_a_different_body_under_a_used_key_is_409_naming_the_key(client, alice, movies):
    client.force_login(alice)
    _post(client, "/v1/events", {"movie_id": movies[0].id, "kind": "rating", "value": 4.0, "idempotency_key": "k-1"})
    response = _post(client, "/v1/events", {"movie_id": movies[0].id, "kind": "rating", "value": 1.0,
                                            "idempotency_key": "k-1"})
    assert response.status_code == 409
    assert "'k-1'" in response.json()["idempotency_key"][0]
    assert response.json()["code"] == "idempotency_conflict" and "'k-1'" in response.json()["detail"]  # Error schema
    assert list(Event.objects.values_list("value", flat=True)) == [4.0]


@pytest.mark.parametrize("change", [{"movie_id": 1}, {"kind": "watch"}, {"request_id": "other"},
                                    {"occurred_at": "2026-01-01T00:00:00Z"}, {"policy_version": "v2"}])
def test_any_changed_field_is_a_conflict(client, alice, movies, change):
    client.force_login(alice)
    body = {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "k-2"}
    assert _post(client, "/v1/events", body).status_code == 202
    changed = {**body, **change}
    if "movie_id" in change:
        changed["movie_id"] = movies[1].id
    assert _post(client, "/v1/events", changed).status_code == 409
    assert Event.objects.count() == 1


def test_a_batch_with_a_conflicting_key_fails_whole_listing_positions_and_stores_nothing(client, alice, movies):
    client.force_login(alice)
    _post(client, "/v1/events/batch", {"events": [
        {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "a"},
        {"movie_id": movies[1].id, "kind": "click", "idempotency_key": "b"}]})
    response = _post(client, "/v1/events/batch", {"events": [
        {"movie_id": movies[2].id, "kind": "click", "idempotency_key": "new-1"},
        {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "a"},             # same body: a replay
        {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "b"},             # different movie
        {"movie_id": movies[3].id, "kind": "click", "idempotency_key": "new-2"}]})
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "code", "events.2.idempotency_key"}  # the documented Error shape + the field
    assert body["code"] == "idempotency_conflict" and "'b'" in body["detail"]
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == ["a", "b"]


def test_a_row_stored_before_hashing_replays_whatever_the_body(client, alice, movies):
    client.force_login(alice)
    _post(client, "/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "legacy"})
    Event.objects.update(body_hash="")
    response = _post(client, "/v1/events", {"movie_id": movies[1].id, "kind": "click", "idempotency_key": "legacy"})
    assert response.status_code == 202
    assert response.json()["replayed"] is True
    assert Event.objects.get().movie == movies[0]


def test_the_service_raises_a_conflict_for_server_side_callers(alice, movies):
    event_record_batch(user=alice, items=[EventInput(movie_id=movies[0].id, kind="click", idempotency_key="s")])
    with pytest.raises(IdempotencyConflict) as caught:
        event_record_batch(user=alice, items=[EventInput(movie_id=movies[1].id, kind="click", idempotency_key="s")])
    assert caught.value.positions == [0]
    assert Event.objects.count() == 1
