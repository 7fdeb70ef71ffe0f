"""Rating services and the selectors other apps build on."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from catalog.models import Credit, Person, Rating
from catalog.selectors import movie_get, movie_metadata_map, ratings_as_arrays
from catalog.services import rating_delete, rating_upsert
from tests.factories import MovieFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_second_rating_replaces_the_first() -> None:
    user, movie = UserFactory(), MovieFactory()

    rating_upsert(user=user, movie=movie, value=3.0)
    rating_upsert(user=user, movie=movie, value=4.5)

    assert list(Rating.objects.filter(user=user).values_list("value", flat=True)) == [4.5]
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (1, 4.5)


@pytest.mark.parametrize("value", [0, 5.5, 3.3, "four"])
def test_ratings_outside_half_steps_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        rating_upsert(user=UserFactory(), movie=MovieFactory(), value=value)


def test_rating_delete_updates_the_stats() -> None:
    user, movie = UserFactory(), MovieFactory()
    rating_upsert(user=user, movie=movie, value=2.0)

    assert rating_delete(user=user, movie=movie) is True
    assert rating_delete(user=user, movie=movie) is False
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (0, None)


def test_movie_get_raises_404_for_unknown_ids() -> None:
    with pytest.raises(Http404):
        movie_get(movie_id=123456789)


def test_ratings_as_arrays_returns_aligned_arrays_per_dataset() -> None:
    when = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    first = RatingFactory(value=4.0, rated_at=when, source="ml-100k")
    RatingFactory(value=2.5, rated_at=when, source="web")

    users, movies, stamps, values = ratings_as_arrays(dataset="ml-100k")

    assert users.tolist() == [first.user_id] and movies.tolist() == [first.movie_id]
    assert stamps.tolist() == [1577836800] and values.dtype == np.float32 and values.tolist() == [4.0]
    assert len(ratings_as_arrays()[0]) == 2


def test_movie_metadata_map_has_what_the_serving_engine_needs(django_assert_num_queries) -> None:  # noqa: ANN001
    movie = MovieFactory(genres=["Sci-Fi", "Action"], keywords=["space"], tags=["classic"])
    director = Person.objects.create(name="George Lucas", external_id="hetrec:george_lucas")
    Credit.objects.create(movie=movie, person=director, role=Credit.Role.DIRECTOR)

    with django_assert_num_queries(3):
        meta = movie_metadata_map()

    assert meta[movie.id]["genres"] == ["Action", "Sci-Fi"] and meta[movie.id]["director"] == "George Lucas"
    assert meta[movie.id]["keywords"] == ["space"] and meta[movie.id]["tags"] == ["classic"]
    assert {"title", "year", "collection", "vote_average", "vote_count", "popularity", "poster_path",
            "overview"} <= set(meta[movie.id])
