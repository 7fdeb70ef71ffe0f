"""The per-process rating-history cache: served without a query while its tokens hold, re-read after any write."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from catalog import history
from catalog.history import EPOCH_KEY, history_epoch_bump, history_keys, rating_history
from catalog.models import Rating
from catalog.services.ratings import rating_delete, rating_upsert
from tests.factories import MovieFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def shared_cache(settings):  # noqa: ANN001, ANN201
    """The cache counts as shared (as with Redis); the embedded run's local-memory cache stands in for it."""
    if not settings.REDIS_URL:
        settings.REDIS_URL = "redis://stand-in-for-the-local-memory-cache"
    history.forget_all()
    yield
    history.forget_all()


def _read(user, limit: int = 200):  # noqa: ANN001, ANN202
    return rating_history(user=user, limit=limit, published=cache.get_many(history_keys(user.pk)))


@pytest.fixture
def rated():  # noqa: ANN201
    user = UserFactory()
    movies = MovieFactory.create_batch(3)
    for i, movie in enumerate(movies):
        RatingFactory(user=user, movie=movie, value=3.0 + i * 0.5, rated_at=BASE + dt.timedelta(days=i))
    return user, movies


def test_a_second_read_is_served_without_a_query(rated, django_assert_num_queries) -> None:  # noqa: ANN001
    user, movies = rated
    first = _read(user)
    assert first.movie_ids == [m.id for m in movies]  # oldest first
    assert first.ratings == [3.0, 3.5, 4.0]
    with django_assert_num_queries(0):
        assert _read(user) == first


def test_another_process_takes_the_history_one_process_read(rated, django_assert_num_queries) -> None:  # noqa: ANN001
    user, _ = rated
    first = _read(user)
    history.forget_all()  # another process: nothing of its own
    with django_assert_num_queries(0):
        assert _read(user) == first


def test_a_shared_history_is_not_taken_after_a_rating_or_past_its_age(rated, monkeypatch,  # noqa: ANN001
                                                                     django_assert_num_queries) -> None:
    user, _ = rated
    _read(user)
    newer = MovieFactory()
    rating_upsert(user=user, movie=newer, value=5.0, rated_at=BASE + dt.timedelta(days=10))
    history.forget_all()
    assert _read(user).movie_ids[-1] == newer.id  # the shared copy carries the old token
    history.forget_all()
    with django_assert_num_queries(0):
        assert _read(user).movie_ids[-1] == newer.id  # the new read is shared in turn
    history.forget_all()
    with django_assert_num_queries(1):
        assert len(_read(user, limit=2).movie_ids) == 2  # a copy of another limit is not taken
    history.forget_all()
    monkeypatch.setattr(history, "MAX_AGE_S", 0.0)  # its age counts from the database read
    with django_assert_num_queries(1):
        _read(user)


def test_a_rating_through_the_service_is_seen_on_the_next_read(rated) -> None:  # noqa: ANN001
    user, movies = rated
    _read(user)
    newer = MovieFactory()
    rating_upsert(user=user, movie=newer, value=5.0, rated_at=BASE + dt.timedelta(days=10))
    assert _read(user).movie_ids[-1] == newer.id
    rating_upsert(user=user, movie=movies[0], value=1.0, rated_at=BASE + dt.timedelta(days=11))
    assert _read(user).movie_ids[-1] == movies[0].id and _read(user).ratings[-1] == 1.0
    rating_delete(user=user, movie=newer)
    assert newer.id not in _read(user).movie_ids


def test_a_row_saved_outside_the_services_changes_the_token_too(rated) -> None:  # noqa: ANN001
    user, movies = rated
    _read(user)
    row = Rating.objects.get(user=user, movie=movies[1])
    row.value = 0.5
    row.save()  # e.g. Django admin
    assert _read(user).ratings[1] == 0.5
    user_two = UserFactory()
    RatingFactory(user=user_two, movie=movies[0])
    assert _read(user).ratings[1] == 0.5  # another user's write leaves this history alone


def test_a_bulk_write_is_seen_after_the_epoch_bump(rated) -> None:  # noqa: ANN001
    user, movies = rated
    _read(user)
    extra = MovieFactory()
    Rating.objects.bulk_create([Rating(user=user, movie=extra, value=2.0, rated_at=BASE + dt.timedelta(days=5))])
    assert extra.id not in _read(user).movie_ids  # no signal: the cached copy is still served
    history_epoch_bump()
    assert _read(user).movie_ids[-1] == extra.id


def test_a_history_read_before_a_write_is_not_served_after_it(rated) -> None:  # noqa: ANN001
    user, movies = rated
    _read(user)
    published_before = cache.get_many(history_keys(user.pk))  # a reader saw the keys ...
    del published_before[history.data_key(user.pk)]  # (with the shared copy it would serve that snapshot)
    rating_upsert(user=user, movie=MovieFactory(), value=5.0, rated_at=BASE + dt.timedelta(days=20))
    history.forget_all()
    stale = rating_history(user=user, limit=200, published=published_before)  # ... and reads after the write
    assert len(stale.movie_ids) == 4  # (the database already has it)
    assert len(_read(user).movie_ids) == 4  # stored under the old token: the new token forces a re-read


def test_entries_expire_and_the_limit_is_part_of_the_key(rated, monkeypatch, django_assert_num_queries) -> None:  # noqa: ANN001
    user, _ = rated
    _read(user)
    assert len(_read(user, limit=2).movie_ids) == 2
    monkeypatch.setattr(history, "MAX_AGE_S", 0.0)
    with django_assert_num_queries(1):
        _read(user, limit=2)


def test_without_a_shared_cache_every_read_queries(rated, settings, django_assert_num_queries) -> None:  # noqa: ANN001
    user, _ = rated
    settings.REDIS_URL = ""
    assert history_keys(user.pk) == []
    _read(user)
    with django_assert_num_queries(1):
        _read(user)


def test_the_importer_bumps_the_epoch(ml_small_slice) -> None:  # noqa: ANN001
    from catalog.importers.movielens import import_movielens

    before = cache.get(EPOCH_KEY)
    import_movielens(ml_small_slice, progress=False)
    assert cache.get(EPOCH_KEY) not in (None, before)
