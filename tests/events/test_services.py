"""The outbox: durable write, relay after commit (or stay pending), exactly-once apply (embedded mode)."""

from __future__ import annotations

import pytest

from catalog.models import Rating
from events.models import Event
from events.selectors import event_features_for, watchlist_movie_ids
from events.services import (
    event_apply_batch,
    event_outbox_relay,
    event_record,
    impression_log_batch,
    watchlist_set,
)
from recommendations.models import OnlineCheckpoint
from recommendations.online.checkpoints import checkpoint_follow

pytestmark = pytest.mark.django_db


def test_without_redis_a_recorded_rating_is_applied_after_commit(alice, movies, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event, created = event_record(user=alice, movie=movies[0], kind="rating", value=4.0, idempotency_key="a")
    event.refresh_from_db()
    assert created and event.relayed_at is not None and event.applied_at is not None
    assert Rating.objects.get(user=alice, movie=movies[0]).value == 4.0
    checkpoint = OnlineCheckpoint.objects.get()
    assert checkpoint.events_applied == 1 and checkpoint.report["applied"] == 1


def test_nothing_is_announced_when_the_transaction_rolls_back(alice, movies, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            event_record(user=alice, movie=movies[0], kind="click", idempotency_key="gone")
            raise RuntimeError("rolled back")
    assert callbacks == [] and not Event.objects.exists()


def test_applying_the_same_events_twice_applies_them_once(alice, movies):
    event, _ = event_record(user=alice, movie=movies[1], kind="rating", value=5.0, idempotency_key="x")
    seen: list[list[str]] = []

    def apply(events):  # noqa: ANN001, ANN202
        seen.append([str(e.id) for e in events])
        return "what apply returned"

    first = event_apply_batch(event_ids=[str(event.id)], apply=apply)
    second = event_apply_batch(event_ids=[str(event.id)], apply=apply)
    assert [len(first.events), len(second.events)] == [1, 0]
    assert seen == [[str(event.id)]]
    assert first.result == "what apply returned" and second.result is None


def test_a_follow_up_state_is_stored_only_on_top_of_the_newest_checkpoint(alice, movies,
                                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event_record(user=alice, movie=movies[0], kind="click", idempotency_key="c")
    newest = OnlineCheckpoint.objects.latest("id")
    stale = checkpoint_follow(based_on=newest.id - 1, state=lambda: b"stale", report={})
    assert stale is None and OnlineCheckpoint.objects.latest("id") == newest  # another applier's state stands
    follow = checkpoint_follow(based_on=newest.id, state=lambda: b"checked", report={"held_out_check": {}})
    assert follow is not None and follow.id > newest.id
    assert bytes(follow.state) == b"checked" and follow.events_applied == 0


def test_a_failing_apply_leaves_the_events_unapplied(alice, movies):
    event, _ = event_record(user=alice, movie=movies[1], kind="click", idempotency_key="y")

    def broken(events):  # noqa: ANN001, ANN202
        raise ValueError("model exploded")

    with pytest.raises(ValueError):
        event_apply_batch(event_ids=[str(event.id)], apply=broken)
    event.refresh_from_db()
    assert event.applied_at is None and not OnlineCheckpoint.objects.exists()


def test_when_redis_is_unreachable_events_stay_in_the_outbox(alice, movies, settings,
                                                             django_capture_on_commit_callbacks):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        event, _ = event_record(user=alice, movie=movies[0], kind="click", idempotency_key="down")
    event.refresh_from_db()
    assert event.relayed_at is None and event.applied_at is None
    assert event_outbox_relay() == 0


def test_impressions_are_logged_with_propensities_positions_and_policy(alice, movies):
    logged = impression_log_batch(user=alice, movie_ids=[m.id for m in movies[:3]], propensities=[0.5, 0.25, 0.125],
                                  positions=[0, 1, 2], policy_version="pl-1", request_id="req-9")
    assert [(e.movie_id, e.propensity, e.position) for e in logged] == [
        (movies[0].id, 0.5, 0), (movies[1].id, 0.25, 1), (movies[2].id, 0.125, 2)]
    again = impression_log_batch(user=alice, movie_ids=[movies[0].id], propensities=[0.5], positions=[0],
                                 policy_version="pl-1", request_id="req-9")
    assert again[0].id == logged[0].id and Event.objects.count() == 3


def test_impressions_of_unknown_movies_are_refused(alice, movies):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="unknown movie"):
        impression_log_batch(user=alice, movie_ids=[1], propensities=[0.5], positions=[0], policy_version="p",
                             request_id="r")


def test_the_watchlist_follows_the_latest_event_per_movie(alice, movies):
    watchlist_set(user=alice, movie_id=movies[0].id, on=True)
    watchlist_set(user=alice, movie_id=movies[1].id, on=True)
    watchlist_set(user=alice, movie_id=movies[0].id, on=False)
    assert watchlist_movie_ids(user=alice) == [movies[1].id]


def test_features_show_the_recent_sequence_and_counters(client, alice, movies, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event_record(user=alice, movie=movies[0], kind="click", idempotency_key="1")
        event_record(user=alice, movie=movies[1], kind="rating", value=3.5, idempotency_key="2")
    client.force_login(alice)
    body = client.get("/v1/events/features").json()
    assert [e["movie_id"] for e in body["recent_sequence"]] == [movies[1].id, movies[0].id]
    assert body["counters"]["click"] == 1 and body["counters"]["rating"] == 1
    assert body["pending_events"] == 0 and body["model_state_version"] >= 1
    assert body == event_features_for(user=alice) | {"model_state_version": body["model_state_version"]}
