"""The Django side of online learning: applied events publish a state version that other workers swap in."""

from __future__ import annotations

import pytest

from events.services import event_record
from recommendations import online
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _embedded(settings, tmp_path):  # noqa: ANN001, ANN202
    """The in-process path (the stream path is in tests/events/test_reliability.py), no bundle unless a test adds one."""
    from recommendations import engine

    settings.REDIS_URL = ""
    settings.ML_ARTIFACTS_DIR = tmp_path / "no-artifacts"
    engine.reset_engine()
    online.online_reset()
    yield
    online.online_reset()
    engine.reset_engine()


def test_applied_events_are_checkpointed_and_a_fresh_worker_starts_from_them(alice,
                                                                            django_capture_on_commit_callbacks):
    movies = [MovieFactory() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for i, movie in enumerate(movies):
            event_record(user=alice, movie=movie, kind="click", idempotency_key=f"c{i}")
    writer = online.coordinator()
    assert writer.item_counts.sum() == 3 and writer.version >= 3
    online.online_reset()  # another process: nothing in memory yet
    reader = online.coordinator()
    assert reader is not writer
    assert reader.version == writer.version and reader.item_counts.tolist() == writer.item_counts.tolist()


def test_a_serving_worker_swaps_in_a_newer_version_on_its_next_request(client, alice,
                                                                       django_capture_on_commit_callbacks):
    movie = MovieFactory()
    stale = online.coordinator()
    stale_version = stale.version
    with django_capture_on_commit_callbacks(execute=True):
        event_record(user=alice, movie=movie, kind="watch", value=1.0, idempotency_key="w")
    fresh_version = stale.version
    stale.version, stale.item_counts[:] = stale_version, 0  # as if another process had applied the batch
    online._local["checked_at"] = 0.0
    client.get("/v1/platform/status")  # any request: request_started -> online_state_sync()
    assert stale.version == fresh_version and stale.item_counts.sum() == 1


def test_a_rating_posted_through_the_api_changes_the_next_recommendations(client, alice,
                                                                         django_capture_on_commit_callbacks):
    movies = [MovieFactory(genres=["Sci-Fi"], rating_count=100 - i) for i in range(15)]
    before = [item["movie_id"] for item in online.recommendations_payload(user_id=alice.pk)["items"]]
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/events", {"movie_id": before[0], "kind": "rating", "value": 4.5,
                                              "idempotency_key": "rate-top"}, content_type="application/json")
    assert response.status_code == 202
    after = [item["movie_id"] for item in online.recommendations_payload(user_id=alice.pk)["items"]]
    assert before[0] not in after and after != before
    assert len(movies) == 15


@pytest.fixture
def serving(settings, serving_bundle, tmp_path):  # noqa: ANN001, ANN201
    """The tiny serving bundle (a private copy) and the catalog movies it knows."""
    import shutil

    from recommendations import engine
    from tests.ml_core.serving_bundle import tiny_metadata

    shutil.copytree(serving_bundle, tmp_path / "artifacts" / "serving")
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.APEX_SERVING_TIER = "1"
    for movie_id, meta in tiny_metadata().items():
        MovieFactory(id=movie_id, title=meta["title"], year=meta["year"], genres=meta["genres"])
    engine.reset_engine()
    online.online_reset()
    yield engine
    engine.reset_engine()


def test_with_the_engine_a_rating_changes_the_list_and_the_served_counters(client, alice, serving,
                                                                          django_capture_on_commit_callbacks):
    """Done-when: a rating through the API changes the next recommendations, learned by the engine's learner."""
    before = [item["movie_id"] for item in online.recommendations_payload(user_id=alice.pk)["items"]]
    loaded = serving.get_engine()
    count_before = float(loaded.popularity.counts[loaded.item_index(101)])
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/events", {"movie_id": 101, "kind": "rating", "value": 5.0,
                                              "idempotency_key": "sci-fi"}, content_type="application/json")
    assert response.status_code == 202
    after = [item["movie_id"] for item in online.recommendations_payload(user_id=alice.pk)["items"]]
    assert after != before and 101 not in after
    sci_fi = set(range(102, 111))
    assert len(sci_fi & set(after[:5])) >= 3  # the next films of the cluster she just rated
    coordinator = online.coordinator()
    assert coordinator.base == f"bundle:{loaded.manifest_version}"
    assert loaded.popularity.counts[loaded.item_index(101)] == count_before + 1
    assert loaded.state_version == coordinator.version
