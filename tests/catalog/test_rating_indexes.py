"""The indexes behind the rating queries that must stay fast at 25M ratings (issue 18): PostgreSQL's plans for a
member's history, the admin ratings list, the trending window and a member's ratings of some movies use an index,
never a sequential scan of the ratings table."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Movie, Rating
from catalog.selectors import rating_list_for_user, rating_map_for_user, rating_sources
from catalog.services.bulk import insert_rows

pytestmark = [pytest.mark.django_db, pytest.mark.services]
USERS, PER_USER, MOVIES = 400, 60, 2000


@pytest.fixture
def ratings() -> list:
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's")
    user_model = get_user_model()
    user_model.objects.bulk_create([user_model(username=f"ix{i}", password="!") for i in range(USERS)])
    users = list(user_model.objects.filter(username__startswith="ix").order_by("id").values_list("id", flat=True))
    Movie.objects.bulk_create([Movie(id=m, title=f"m{m}") for m in range(1, MOVIES + 1)])
    base = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    rows = [(u, 1 + (i * 7919 + j * 104729) % MOVIES, 4.0, base + dt.timedelta(hours=i * PER_USER + j), "ix")
            for i, u in enumerate(users) for j in range(PER_USER)]
    insert_rows(Rating, ["user", "movie", "value", "rated_at", "source"], rows)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Rating._meta.db_table}")
    return users


def _plan(queryset) -> str:  # noqa: ANN001
    return queryset.explain()


def test_the_rating_queries_use_indexes(ratings: list) -> None:
    user = get_user_model().objects.get(pk=ratings[len(ratings) // 2])
    latest = Rating.objects.order_by("-rated_at").values_list("rated_at", flat=True)[0]
    plans = {
        "history": _plan(rating_list_for_user(user=user).values_list("movie_id", "rated_at", "value")[:200]),
        "admin list": _plan(Rating.objects.select_related("user", "movie").order_by(*Rating._meta.ordering)[:50]),
        "trending window": _plan(Rating.objects.filter(rated_at__gte=latest - dt.timedelta(days=7))
                                 .values("movie_id")),
        "member's ratings of some movies": _plan(
            Rating.objects.filter(user=user, movie_id__in=[1, 2, 3]).values_list("movie_id", "value")),
    }
    table = Rating._meta.db_table
    for name, plan in plans.items():
        assert f"Seq Scan on {table}" not in plan, f"{name}:\n{plan}"
        assert "Index" in plan, f"{name}:\n{plan}"
    # a member's history and the admin list read the (user, rated_at) index already in time order
    for name in ("history", "admin list"):
        assert "rating_user_time" in plans[name] and "Presorted Key" in plans[name], f"{name}:\n{plans[name]}"
    assert rating_map_for_user(user=user, movie_ids=[1, 2, 3]) is not None


def test_a_first_load_builds_the_same_constraints_and_indexes_again(ml_small_slice) -> None:  # noqa: ANN001
    """Into an empty table the import sets the unique/foreign keys and secondary indexes aside and builds them again
    afterwards: the same names and definitions, enforced."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's bulk path")
    from django.db import IntegrityError, transaction

    from catalog.importers import import_movielens

    table = Rating._meta.db_table

    def schema() -> tuple[list, list]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])
            indexes = cursor.fetchall()
            cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                           "ORDER BY 1", [table])
            return indexes, cursor.fetchall()

    before = schema()
    assert not Rating.objects.exists()
    report = import_movielens(ml_small_slice, progress=False)
    assert report.counts["ratings created"] > 0
    assert schema() == before
    rating = Rating.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(user_id=rating.user_id, movie_id=rating.movie_id, value=3.0, rated_at=rating.rated_at)


def test_the_admin_source_filter_walks_the_index(ratings: list) -> None:
    """The ratings list's source filter: one index lookup per source, not a scan of every row (SELECT DISTINCT)."""
    user = get_user_model().objects.get(pk=ratings[0])
    Rating.objects.create(user=user, movie_id=MOVIES, value=3.0, rated_at=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
                          source="web")
    expected = sorted(set(Rating.objects.values_list("source", flat=True)))
    assert rating_sources() == expected == ["ix", "web"]
    with CaptureQueriesContext(connection) as captured:
        rating_sources()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Seq Scan on {Rating._meta.db_table}" not in plan, plan
    assert "catalog_rating_source" in plan, plan


def test_an_import_leaves_the_planner_statistics_of_what_it_loaded(ml_small_slice) -> None:  # noqa: ANN001
    """A bulk load ANALYZEs the tables it filled: with no statistics the planner guessed a third of 25M ratings
    inside the trending week and scanned the table (1.4 s a page) instead of using the rated_at index."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's statistics")
    from catalog.importers import import_movielens

    import_movielens(ml_small_slice, progress=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Rating._meta.db_table])
        assert cursor.fetchone()[0] == pytest.approx(Rating.objects.count(), rel=0.05)
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = 'rated_at'",
                       [Rating._meta.db_table])
        assert cursor.fetchone()[0] == 1
