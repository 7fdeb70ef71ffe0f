"""A member's arm changes their real recommendation request, and is stored on its impressions and their events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from events.models import Event
from experiments.assignment import member_arm
from experiments.services import experiment_start
from recommendations import serving as serving_adapter
from tests.factories import MovieFactory, RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(tiny_serving: Path) -> Path:
    return tiny_serving


@pytest.fixture
def member(alice):  # noqa: ANN001, ANN201
    from catalog.models import Movie

    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i, movie_id in enumerate((101, 102, 103)):
        RatingFactory(user=alice, movie=Movie.objects.get(id=movie_id), value=5.0, rated_at=base + dt.timedelta(days=i))
    client = APIClient()
    client.force_authenticate(alice)
    return client, alice


def _start(make_experiment, capture, arms):  # noqa: ANN001, ANN202
    with capture(execute=True):
        return experiment_start(experiment=make_experiment(arms=arms))


def test_outside_experiments_the_list_has_no_arm(serving, member) -> None:  # noqa: ANN001
    client, alice = member
    body = client.get(f"/v1/recommendations/user/{alice.pk}?k=5").json()
    assert body["arm"] is None and body["policy"]["name"] == "plackett-luce"
    from events.impressions import impressions_store

    impressions_store()  # with REDIS_URL the list went through the impression stream
    assert set(Event.objects.filter(user=alice, kind="impression").values_list("arm_id", flat=True)) == {None}


def test_an_epsilon_arm_serves_epsilon_greedy_slates_and_its_impressions_and_clicks_carry_the_arm(
        serving, member, make_experiment, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    client, alice = member
    # all traffic on the variant, so alice is in it whatever her hash
    _start(make_experiment, django_capture_on_commit_callbacks,
           [("control", 0.0, "exploration", {}, True), ("greedy-ish", 1.0, "exploration", {"epsilon": 0.3}, False)])
    arm = member_arm(user_id=alice.pk)
    body = client.get(f"/v1/recommendations/user/{alice.pk}?k=5").json()
    assert body["arm"] == {"experiment_id": arm.experiment_id, "arm_id": arm.arm_id, "arm": "greedy-ish"}
    assert body["policy"] == {"name": "epsilon-greedy", "epsilon": 0.3}
    # epsilon-greedy propensities: (1 - eps) [best remaining] + eps / remaining, never the PL ones
    for item in body["items"]:
        assert item["propensity"] >= 0.3 / 20 and item["propensity"] <= 1.0
    from events.impressions import impressions_store

    impressions_store()
    logged = Event.objects.filter(user=alice, kind="impression", request_id=body["request_id"])
    assert logged.count() == 5 and set(logged.values_list("arm_id", flat=True)) == {arm.arm_id}
    assert sorted(logged.values_list("propensity", flat=True)) == sorted(i["propensity"] for i in body["items"])
    shown = body["items"][0]["movie_id"]
    r = client.post("/v1/events", {"movie_id": shown, "kind": "click", "idempotency_key": "c1"}, format="json")
    assert r.status_code == 202, r.content
    assert Event.objects.get(user=alice, idempotency_key="c1").arm_id == arm.arm_id


def test_a_lite_tier_arm_and_a_weights_arm_change_the_ranking_for_that_request_only(
        serving, member, make_experiment, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    client, alice = member
    url = f"/v1/recommendations/user/{alice.pk}?k=8&explain=1"

    def ranking() -> tuple[list[int], dict]:
        body = client.get(url).json()
        return [i["movie_id"] for i in body["items"]], body

    baseline, body = ranking()
    assert set(body["items"][0]["explanation"]["contributions"]) == {"sasrec", "lightgcn", "ease", "diffusion"}
    _start(make_experiment, django_capture_on_commit_callbacks,
           [("control", 0.0, "exploration", {}, True), ("lite", 1.0, "tier", {"tier": "lite"}, False)])
    lite, body = ranking()
    assert body["arm"]["arm"] == "lite"
    assert all(not i["explanation"]["contributions"] for i in body["items"])  # no ensemble scored it
    assert lite != baseline
    assert serving_adapter.get_engine().weights_version == body["weights_version"]  # the process's blend untouched


def test_a_weights_arm_blends_with_its_own_weights(serving, member, make_experiment, monkeypatch,
                                                   django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    client, alice = member
    _start(make_experiment, django_capture_on_commit_callbacks,
           [("control", 0.0, "weights", {}, True),
            ("lightgcn-only", 1.0, "weights", {"weights": {"lightgcn": 1.0}}, False)])
    engine = serving_adapter.get_engine()
    seen: list[dict] = []
    real = engine.recommend_user
    monkeypatch.setattr(engine, "recommend_user", lambda history, **kw: seen.append(kw) or real(history, **kw))
    body = client.get(f"/v1/recommendations/user/{alice.pk}?k=5").json()
    assert body["arm"]["arm"] == "lightgcn-only" and seen[-1]["weights"] == {"lightgcn": 1.0}
    # the override ranks exactly as the engine would with that blend swapped in for everyone
    history = [101, 102, 103]
    arm = real(history, k=6, temperature=0.0, weights={"lightgcn": 1.0})
    blended = real(history, k=6, temperature=0.0)
    engine.set_weights({"lightgcn": 1.0}, "lightgcn-only")
    swapped = real(history, k=6, temperature=0.0)
    assert [(i["movie_id"], i["score"]) for i in arm.items] == [(i["movie_id"], i["score"]) for i in swapped.items]
    assert [i["score"] for i in arm.items] != [i["score"] for i in blended.items]


def test_events_sent_with_an_api_key_carry_no_arm(alice, api_key_for_alice, make_experiment,
                                                  django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    """An API key speaks for its holder's own end users, who are never bucketed."""
    MovieFactory(id=501)
    _start(make_experiment, django_capture_on_commit_callbacks,
           [("control", 0.5, "exploration", {}, True), ("b", 0.5, "exploration", {"epsilon": 0.1}, False)])
    r = APIClient().post("/v1/events", {"movie_id": 501, "kind": "click", "idempotency_key": "k1",
                                        "external_user": "u-9"}, format="json", **api_key_for_alice.headers)
    assert r.status_code == 202, r.content
    assert Event.objects.get(idempotency_key="k1").arm_id is None
    client = APIClient()
    client.force_authenticate(alice)
    assert client.post("/v1/events", {"movie_id": 501, "kind": "click", "idempotency_key": "k2"},
                       format="json").status_code == 202
    assert Event.objects.get(idempotency_key="k2").arm_id == member_arm(user_id=alice.pk).arm_id


def test_a_rerank_arm_sets_mmr_lambda_and_it_trades_relevance_for_diversity(
        serving, member, make_experiment, monkeypatch, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    client, alice = member
    _start(make_experiment, django_capture_on_commit_callbacks,
           [("control", 0.0, "rerank", {}, True), ("diverse", 1.0, "rerank", {"mmr_lambda": 0.3}, False)])
    engine = serving_adapter.get_engine()
    seen: list[dict] = []
    real = engine.recommend_user
    monkeypatch.setattr(engine, "recommend_user", lambda history, **kw: seen.append(kw) or real(history, **kw))
    body = client.get(f"/v1/recommendations/user/{alice.pk}?k=5").json()
    assert body["arm"]["arm"] == "diverse" and seen[-1]["mmr_lambda"] == 0.3
    # no sampling: relevance only gives the candidates in score order; lambda 0.3 lets diversity reorder them
    relevance = [i["score"] for i in real([101, 102, 103], k=8, temperature=0.0, mmr_lambda=1.0).items]
    diverse = [i["score"] for i in real([101, 102, 103], k=8, temperature=0.0, mmr_lambda=0.3).items]
    assert relevance == sorted(relevance, reverse=True) and diverse != relevance
