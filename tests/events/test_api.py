"""POST /v1/events and /v1/events/batch: 202 with ids, idempotent replays, per-field errors, 404 movies."""

from __future__ import annotations

import pytest

from events.models import Event

pytestmark = pytest.mark.django_db


def test_posting_a_rating_returns_202_with_the_event_id(client, alice, movies):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": movies[0].id, "kind": "rating", "value": 4.5,
                                          "idempotency_key": "r-1"}, content_type="application/json")
    assert response.status_code == 202, response.json()
    event = Event.objects.get()
    assert response.json() == {"id": str(event.id), "status": "accepted", "replayed": False}
    assert (event.user, event.movie, event.kind, event.value) == (alice, movies[0], "rating", 4.5)


def test_replaying_an_idempotency_key_returns_the_same_event_and_stores_one(client, alice, movies):
    client.force_login(alice)
    body = {"movie_id": movies[1].id, "kind": "click", "idempotency_key": "click-7"}
    first = client.post("/v1/events", body, content_type="application/json").json()
    second = client.post("/v1/events", body, content_type="application/json").json()
    assert second["id"] == first["id"]
    assert second["replayed"] is True
    assert Event.objects.count() == 1


def test_the_same_key_from_two_users_is_two_events(client, alice, bob, movies):
    body = {"movie_id": movies[1].id, "kind": "click", "idempotency_key": "shared"}
    for user in (alice, bob):
        client.force_login(user)
        assert client.post("/v1/events", body, content_type="application/json").status_code == 202
    assert Event.objects.count() == 2


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"kind": "rating", "value": 5.5}, "value", "half steps"),
    ({"kind": "rating", "value": 3.25}, "value", "half steps"),
    ({"kind": "rating"}, "value", "needs a value"),
    ({"kind": "watch", "value": 2}, "value", "fraction"),
    ({"kind": "click", "value": 1}, "value", "no value"),
    ({"kind": "impression"}, "propensity", "propensity"),
    ({"kind": "impression", "propensity": 1.5}, "propensity", "(0, 1]"),
])
def test_values_that_break_a_kinds_rules_are_400_naming_the_field(client, alice, movies, body, field, words):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": movies[0].id, "idempotency_key": "k", **body},
                           content_type="application/json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Event.objects.exists()


def test_malformed_events_are_400_with_a_message_per_field(client, alice):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": "x", "kind": "like"}, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"movie_id", "kind", "idempotency_key"}


def test_an_unknown_movie_is_404(client, alice, movies):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": 1, "kind": "click", "idempotency_key": "k"},
                           content_type="application/json")
    assert response.status_code == 404
    assert response.json()["field"] == "movie_id"


def test_anonymous_callers_are_401(client, movies):
    response = client.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "k"},
                           content_type="application/json")
    assert response.status_code == 401


def test_a_batch_is_stored_in_one_go_and_replays_are_reported(client, alice, movies):
    client.force_login(alice)
    events = [{"movie_id": m.id, "kind": "click", "idempotency_key": f"b-{i}"} for i, m in enumerate(movies)]
    first = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert first.status_code == 202
    assert first.json()["accepted"] == 5
    again = client.post("/v1/events/batch", {"events": events[:2] + [
        {"movie_id": movies[0].id, "kind": "rating", "value": 4, "idempotency_key": "b-new"}]},
        content_type="application/json").json()
    assert (again["accepted"], again["replayed"]) == (1, 2)
    assert [e["id"] for e in again["events"][:2]] == [e["id"] for e in first.json()["events"][:2]]
    assert Event.objects.count() == 6


def test_a_batch_with_one_unknown_movie_stores_nothing(client, alice, movies):
    client.force_login(alice)
    events = [{"movie_id": movies[0].id, "kind": "click", "idempotency_key": "a"},
              {"movie_id": 123, "kind": "click", "idempotency_key": "b"}]
    response = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["field"] == "events.1.movie_id"
    assert not Event.objects.exists()


def test_malformed_batch_items_are_400_naming_position_and_field(client, alice, movies):
    client.force_login(alice)
    events = [{"movie_id": movies[0].id, "kind": "click", "idempotency_key": "ok"},
              {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "x" * 200, "position": -1},
              "not an object"]
    response = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"events.1.idempotency_key", "events.1.position", "events.2.non_field_errors"}
    assert client.post("/v1/events/batch", {"events": []}, content_type="application/json").status_code == 400


def test_a_batch_with_duplicate_keys_is_400(client, alice, movies):
    client.force_login(alice)
    events = [{"movie_id": movies[0].id, "kind": "click", "idempotency_key": "same"}] * 2
    response = client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert response.status_code == 400
    assert "unique" in str(response.json())


def test_an_api_key_posts_for_its_own_end_user(client, api_key_for_alice, movies, alice):
    response = client.post("/v1/events", {"movie_id": movies[0].id, "kind": "watch", "value": 0.8,
                                          "idempotency_key": "w", "external_user": "shop-user-42"},
                           content_type="application/json", **api_key_for_alice.headers)
    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.user, event.api_key, event.external_user) == (alice, api_key_for_alice.key, "shop-user-42")


def test_only_api_keys_may_name_an_end_user(client, alice, movies):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "k",
                                          "external_user": "someone"}, content_type="application/json")
    assert response.status_code == 400
    assert "external_user" in response.json()


def test_impressions_keep_the_serving_policys_propensity(client, alice, movies):
    client.force_login(alice)
    response = client.post("/v1/events", {"movie_id": movies[2].id, "kind": "impression", "propensity": 0.125,
                                          "position": 3, "policy_version": "pl-t0.5", "request_id": "req-1",
                                          "idempotency_key": "imp"}, content_type="application/json")
    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.propensity, event.position, event.policy_version) == (0.125, 3, "pl-t0.5")


def test_events_count_against_the_plans_events_quota(client, alice, movies, plans):
    from billing.models import UsageCounter

    client.force_login(alice)
    events = [{"movie_id": m.id, "kind": "click", "idempotency_key": f"q-{i}"} for i, m in enumerate(movies)]
    client.post("/v1/events/batch", {"events": events}, content_type="application/json")
    assert UsageCounter.objects.get(user=alice, api_key=None, kind="events").count == 5


def test_an_event_past_the_events_quota_gets_the_quota_429(client, alice, movies, plans):
    from billing.models import Plan

    Plan.objects.filter(code="free").update(event_quota=2)
    client.force_login(alice)
    codes = [client.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": f"e-{i}"},
                         content_type="application/json").status_code for i in range(3)]
    refused = client.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "e-9"},
                          content_type="application/json")

    assert codes == [202, 202, 429]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    body = refused.json()
    assert body["code"] == "quota_exceeded" and body["plan"] == "free" and body["limit"] == 2
    assert "Monthly quota exceeded" in body["detail"] and "Upgrade to Pro" in body["upgrade"]
    assert Event.objects.count() == 2


def test_a_batch_past_the_events_quota_is_refused_whole_after_its_checks(client, alice, movies, plans):
    from billing.models import Plan, UsageCounter

    Plan.objects.filter(code="free").update(event_quota=3)
    client.force_login(alice)
    events = [{"movie_id": m.id, "kind": "click", "idempotency_key": f"b-{i}"} for i, m in enumerate(movies[:4])]
    invalid = client.post("/v1/events/batch", {"events": [*events, {"kind": "click"}]},
                          content_type="application/json")
    refused = client.post("/v1/events/batch", {"events": events}, content_type="application/json")

    assert invalid.status_code == 400  # the batch is checked before it is metered
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    assert Event.objects.count() == 0
    assert UsageCounter.objects.filter(user=alice, kind="events", count__gt=0).count() == 0


def test_event_bursts_are_throttled_per_caller(client, alice, bob, movies, monkeypatch):
    from billing.throttles import BurstThrottle

    monkeypatch.setattr(BurstThrottle, "THROTTLE_RATES", {"burst": "2/min"})
    client.force_login(alice)
    codes = [client.post("/v1/events/batch", {"events": [{"movie_id": movies[0].id, "kind": "click",
                                                          "idempotency_key": f"t-{i}"}]},
                         content_type="application/json") for i in range(3)]

    assert [c.status_code for c in codes] == [202, 202, 429]
    assert codes[-1].json()["code"] == "throttled" and int(codes[-1]["Retry-After"]) > 0
    client.force_login(bob)
    assert client.post("/v1/events", {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "t-b"},
                       content_type="application/json").status_code == 202


def test_a_replayed_event_is_not_counted_against_the_quota_twice(client, alice, movies, plans):
    from billing.models import Plan, UsageCounter

    Plan.objects.filter(code="free").update(event_quota=2)
    client.force_login(alice)
    first = {"movie_id": movies[0].id, "kind": "click", "idempotency_key": "once"}
    codes = [client.post("/v1/events", first, content_type="application/json").status_code for _ in range(3)]
    batch = [first, {"movie_id": movies[1].id, "kind": "click", "idempotency_key": "twice"}]
    replayed = client.post("/v1/events/batch", {"events": batch}, content_type="application/json")
    again = client.post("/v1/events/batch", {"events": batch}, content_type="application/json")  # quota now full

    assert codes == [202, 202, 202] and replayed.status_code == 202 and again.status_code == 202
    assert again.json()["replayed"] == 2 and Event.objects.count() == 2
    assert UsageCounter.objects.get(user=alice, api_key=None, kind="events").count == 2
    new = client.post("/v1/events", {**first, "idempotency_key": "third"}, content_type="application/json")
    assert new.status_code == 429
