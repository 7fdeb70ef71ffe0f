"""The predicted rating for you (issue #8) on the detail page and in the user API, on the tiny real bundle."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from recommendations import serving as serving_adapter
from tests.factories import RatingFactory

pytestmark = pytest.mark.django_db
PREDICTED = re.compile(r'data-predicted="([0-9.]+)"')


@pytest.fixture
def serving(serve_tiny):  # noqa: ANN001, ANN201
    """A private copy of the bundle and the catalog movies it knows."""
    return serve_tiny("1")


@pytest.fixture
def rater(alice):  # noqa: ANN001, ANN201
    """Alice rated three Sci-Fi films (5, 4, 5 stars)."""
    from catalog.models import Movie

    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i, (movie_id, value) in enumerate([(101, 5.0), (102, 4.0), (103, 5.0)]):
        RatingFactory(
            user=alice, movie=Movie.objects.get(id=movie_id), value=value, rated_at=base + dt.timedelta(days=i)
        )
    return alice


def test_a_signed_in_member_sees_the_prediction_for_an_unrated_movie(client, serving, rater) -> None:  # noqa: ANN001
    from ml_core.rating import half_stars
    from ml_core.serving import Tier, load_engine

    client.force_login(rater)
    html = client.get(reverse("catalog:movie-detail", args=[104])).content.decode()
    assert "Predicted for you" in html
    from catalog.models import Movie

    movie = Movie.objects.get(id=104)
    assert f"From your 3 ratings and how {movie.rating_count} member" in html  # briefly why
    shown = float(PREDICTED.search(html).group(1))
    expected = load_engine(serving, Tier.LITE).predict_rating([101, 102, 103], [5.0, 4.0, 5.0], 104)
    assert shown == half_stars(expected) and shown * 2 == int(shown * 2)


def test_no_prediction_for_a_movie_already_rated(client, serving, rater) -> None:  # noqa: ANN001
    client.force_login(rater)
    html = client.get(reverse("catalog:movie-detail", args=[101])).content.decode()
    assert "Predicted for you" not in html and not PREDICTED.search(html)


def test_anonymous_visitors_do_not_see_a_prediction(client, serving) -> None:  # noqa: ANN001
    html = client.get(reverse("catalog:movie-detail", args=[104])).content.decode()
    assert "Predicted for you" not in html and not PREDICTED.search(html)
    assert "see your predicted rating" in html


def test_a_member_without_ratings_is_asked_to_rate_first(client, serving, carol) -> None:  # noqa: ANN001
    client.force_login(carol)
    html = client.get(reverse("catalog:movie-detail", args=[104])).content.decode()
    assert "Predicted for you" in html and "Rate a few more movies" in html and not PREDICTED.search(html)


def test_the_users_api_list_carries_each_movies_predicted_rating(serving, rater) -> None:  # noqa: ANN001
    api = APIClient()
    api.force_authenticate(rater)
    body = api.get(f"/v1/recommendations/user/{rater.pk}?k=5").json()
    # the slate is sampled, so it may include a movie nobody rated in training: the predictor has none for it
    assert len(body["items"]) == 5
    for item in body["items"]:
        value, own = item["predicted_rating"], serving_adapter.predict_rating(user_id=rater.pk, movie_id=item["movie_id"])
        assert (0.5 <= value <= 5.0) if own is not None else value is None, item
