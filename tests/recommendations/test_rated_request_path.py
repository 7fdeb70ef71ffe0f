"""A member who just rated (issue #19): the live push reads their new history once, after the apply commits, and
the web worker serving their next request takes it from Redis, without a query, and serves the new history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog import history
from tests.factories import RatingFactory

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def test_the_next_request_after_the_live_push_reads_no_history_from_the_database(  # noqa: ANN001
        settings, serve_tiny, alice, api_key_for_alice, django_capture_on_commit_callbacks) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (the event stream and the shared history)")
    settings.ONLINE_CONSUME_LINGER_S = 0.0
    serve_tiny("3")
    from catalog.models import Movie
    from recommendations.online.push import recommendations_payload
    from recommendations.tasks import consume_event_stream

    for i, movie_id in enumerate((101, 102, 103)):
        RatingFactory(user=alice, movie=Movie.objects.get(id=movie_id), value=5.0,
                      rated_at=dt.datetime(2024, 1, 1 + i, tzinfo=dt.UTC))
    client, url = APIClient(), f"/v1/recommendations/user/{alice.pk}?k=10"
    before = client.get(url, **api_key_for_alice.headers).json()["items"]
    rated = next(i["movie_id"] for i in before)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/events", {"movie_id": rated, "kind": "rating", "value": 4.5,
                                              "idempotency_key": "just-rated"}, format="json",
                               **api_key_for_alice.headers)
    assert response.status_code == 202, response.content
    with django_capture_on_commit_callbacks(execute=True):
        assert consume_event_stream() == 1  # applied; in a test its commit hooks run at the end of this block
    recommendations_payload(user_id=alice.pk)  # the live push, as it runs once the apply has committed
    history.forget_all()  # the next request lands on another worker: nothing of its own
    with CaptureQueriesContext(connection) as queries:
        after = client.get(url, **api_key_for_alice.headers).json()["items"]
    assert [q["sql"] for q in queries.captured_queries if "catalog_rating" in q["sql"]] == []
    assert rated not in [i["movie_id"] for i in after]  # the new history was served: the rated movie is left out
