"""The Django side of online learning: applied events publish a state version that other workers swap in."""

from __future__ import annotations

import pytest

from events.services import event_record
from recommendations.online import learner as learners
from recommendations.online import push
from recommendations.online.checkpoints import checkpoint_latest_id
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _embedded(settings, tmp_path):  # noqa: ANN001, ANN202
    """The in-process path (the stream path is in tests/events/test_reliability.py), no bundle unless a test adds one."""
    from recommendations import serving as serving_adapter

    settings.REDIS_URL = ""
    settings.ML_ARTIFACTS_DIR = tmp_path / "no-artifacts"
    serving_adapter.reset_engine()
    learners.learner_reset()
    yield
    learners.learner_reset()
    serving_adapter.reset_engine()


def test_applied_events_are_checkpointed_and_a_fresh_worker_starts_from_them(alice,
                                                                            django_capture_on_commit_callbacks):
    movies = [MovieFactory() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for i, movie in enumerate(movies):
            event_record(user=alice, movie=movie, kind="click", idempotency_key=f"c{i}")
    writer = learners.learner()
    assert writer.item_counts.sum() == 3 and writer.version >= 3
    learners.learner_reset()  # another process: nothing in memory yet
    reader = learners.learner()
    assert reader is not writer
    assert reader.version == writer.version and reader.item_counts.tolist() == writer.item_counts.tolist()


def test_a_rating_posted_through_the_api_changes_the_next_recommendations(client, alice,
                                                                         django_capture_on_commit_callbacks):
    movies = [MovieFactory(genres=["Sci-Fi"], rating_count=100 - i) for i in range(15)]
    before = [item["movie_id"] for item in push.recommendations_payload(user_id=alice.pk)["items"]]
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/events", {"movie_id": before[0], "kind": "rating", "value": 4.5,
                                              "idempotency_key": "rate-top"}, content_type="application/json")
    assert response.status_code == 202
    after = [item["movie_id"] for item in push.recommendations_payload(user_id=alice.pk)["items"]]
    assert before[0] not in after and after != before
    assert len(movies) == 15


@pytest.fixture
def serving(serve_tiny):  # noqa: ANN001, ANN201
    """The tiny serving bundle (a private copy) and the catalog movies it knows."""
    from recommendations import serving as serving_adapter

    serve_tiny("1")
    learners.learner_reset()
    return serving_adapter


def test_with_the_engine_a_rating_changes_the_list_and_the_served_counters(client, alice, serving,
                                                                          django_capture_on_commit_callbacks):
    """Done-when: a rating through the API changes the next recommendations, learned by the engine's learner."""
    before = [item["movie_id"] for item in push.recommendations_payload(user_id=alice.pk)["items"]]
    loaded = serving.get_engine()
    count_before = dict(loaded.trending(loaded.n_items))[101]
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/events", {"movie_id": 101, "kind": "rating", "value": 5.0,
                                              "idempotency_key": "sci-fi"}, content_type="application/json")
    assert response.status_code == 202
    after = [item["movie_id"] for item in push.recommendations_payload(user_id=alice.pk)["items"]]
    assert after != before and 101 not in after
    sci_fi = set(range(102, 111))
    assert len(sci_fi & set(after[:5])) >= 3  # the next films of the cluster she just rated
    coordinator = learners.learner()
    assert coordinator.base == f"bundle:{loaded.manifest_version}"
    assert dict(loaded.trending(loaded.n_items))[101] == count_before + 1
    assert loaded.online_version == coordinator.version


def test_another_worker_swaps_the_newer_state_in_on_its_next_request(client, alice, serving,
                                                                    django_capture_on_commit_callbacks):
    """A serving worker that did not apply the events (a fresh engine) serves the stored state after one request."""
    from django.core.cache import cache

    from ml_core.serving import load_engine
    from recommendations.online.sync import VERSION_KEY, online_state_sync

    applier = serving.get_engine()
    worker = load_engine(serving.serving_dir())  # another process's engine, still at the bundle's own state
    count_before = dict(worker.trending(worker.n_items))[101]
    with django_capture_on_commit_callbacks(execute=True):
        event_record(user=alice, movie_id=101, kind="watch", value=1.0, idempotency_key="w")
    version = checkpoint_latest_id()
    assert version and cache.get(VERSION_KEY) == version == applier.online_version and worker.online_version == 0
    assert online_state_sync(worker, published=cache.get(VERSION_KEY))
    assert worker.online_version == version and dict(worker.trending(worker.n_items))[101] == count_before + 1
    assert not online_state_sync(worker, published=version)  # nothing newer: no database read, no swap
    serving.reset_engine()  # a process that starts now: its first request loads the engine and the stored state
    client.force_login(alice)
    assert client.get(f"/v1/recommendations/user/{alice.pk}?k=3").status_code == 200
    assert serving.loaded_engine().online_version == version
