"""Ranked pools shared by the serving workers (issue #19): a member's pool is computed once per history change,
by whichever worker meets it first, and read by the others; a new rating is a new pool everywhere."""

from __future__ import annotations

import datetime as dt

import pytest

from ml_core.serving import pipeline
from recommendations import serving as serving_adapter
from tests.factories import RatingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(settings, serve_tiny):  # noqa: ANN001, ANN201
    settings.APEX_SHARED_POOL_TTL_S = 60
    return serve_tiny("2")


@pytest.fixture
def pools_built(monkeypatch):  # noqa: ANN001, ANN201
    """How many ranked pools this process computed (ran retrieval and every model)."""
    calls: list[int] = []
    real = pipeline._user_base

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_user_base", counted)
    return calls


def _rate(user, movie_id: int, value: float, day: int) -> None:  # noqa: ANN001
    from catalog.models import Movie

    RatingFactory(user=user, movie=Movie.objects.get(id=movie_id), value=value,
                  rated_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day))


def _ask(user) -> list[int]:  # noqa: ANN001
    payload = serving_adapter.recommend_user(user=user, user_id=user.pk, k=5, n_candidates=100)
    return [i["movie_id"] for i in payload["items"]]


def test_another_worker_serves_a_members_pool_without_running_the_models(serving, alice, pools_built) -> None:  # noqa: ANN001
    for day, movie_id in enumerate((101, 102, 103)):
        _rate(alice, movie_id, 5.0, day)
    first = _ask(alice)
    assert len(pools_built) == 1 and first
    serving_adapter.reset_engine()  # a second worker: its own engine, nothing cached in it
    second = _ask(alice)
    assert len(pools_built) == 1  # read from the shared store
    assert len(second) == len(first)
    _rate(alice, 104, 4.0, 5)  # a new rating: a new pool, whichever worker serves the member next
    serving_adapter.reset_engine()
    third = _ask(alice)
    assert len(pools_built) == 2 and 104 not in third


def test_without_a_shared_store_each_worker_computes_its_own(serving, settings, alice, pools_built) -> None:  # noqa: ANN001
    settings.APEX_SHARED_POOL_TTL_S = 0
    serving_adapter.reset_engine()
    _rate(alice, 101, 5.0, 0)
    _ask(alice)
    serving_adapter.reset_engine()
    _ask(alice)
    assert len(pools_built) == 2


def test_after_a_rating_the_push_computes_the_pool_the_next_request_reads(serving, alice, pools_built,  # noqa: ANN001
                                                                          django_capture_on_commit_callbacks) -> None:
    from events.services import event_record
    from recommendations.online.consumer import online_apply_outbox

    for day, movie_id in enumerate((101, 102, 103)):
        _rate(alice, movie_id, 5.0, day)
    _ask(alice)
    with django_capture_on_commit_callbacks(execute=False):  # applied below, as the worker applies the outbox
        event, _ = event_record(user=alice, kind="rating", movie_id=104, value=4.0)
    online_apply_outbox(event_ids=[str(event.id)])  # stored, the online state moved, the live list pushed
    assert len(pools_built) == 2  # the push computed the member's new pool
    serving_adapter.reset_engine()  # a web worker that has not served the member since
    after = _ask(alice)
    assert len(pools_built) == 2 and after and 104 not in after  # it read the push's pool: the new history's


def test_a_learning_step_after_the_push_leaves_the_shared_pool_usable(  # noqa: ANN001
        serving, alice, pools_built, monkeypatch, django_capture_on_commit_callbacks) -> None:
    """New served weights apply on top of the shared pool base (retrieval and the models' scores): the next
    request, in any worker, re-blends (and rescores the online ranker's row) instead of running every model."""
    from events.services import event_record
    from recommendations.online import consumer
    from recommendations.serving_services import ensemble_weights_create

    def step_changes_the_ranking() -> int:  # what a passed check does: new weights served (here the blend's)
        names = list(serving_adapter.get_engine().weights)
        with django_capture_on_commit_callbacks(execute=True):
            ensemble_weights_create(version="stepped", weights={n: float(i + 1) for i, n in enumerate(names)},
                                    activate=True)
        return 1

    monkeypatch.setattr(consumer, "online_learn_deferred", step_changes_the_ranking)
    for day, movie_id in enumerate((101, 102, 103)):
        _rate(alice, movie_id, 5.0, day)
    with django_capture_on_commit_callbacks(execute=False):
        event, _ = event_record(user=alice, kind="rating", movie_id=104, value=4.0)
    consumer.online_apply_outbox(event_ids=[str(event.id)])
    assert len(pools_built) == 1  # the push's
    serving_adapter.reset_engine()  # a web worker, which swaps in the new weights on its first request
    served = serving_adapter.recommend_user(user=alice, user_id=alice.pk, k=5, n_candidates=100, explain=True)
    assert len(pools_built) == 1 and served["weights_version"] == "stepped"
    assert served["items"] and 104 not in [i["movie_id"] for i in served["items"]]
