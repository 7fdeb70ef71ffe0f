"""Gold jobs on tiny hand-made silver rows: chronological sequences, popularity/propensity, co-occurrence."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from lakehouse import tables as T
from lakehouse.gold import build_gold_item_cooccurrence, build_gold_item_features, build_gold_user_sequences

pytestmark = pytest.mark.spark
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _schema(columns: tuple[str, ...], *types: str) -> str:
    return ", ".join(f"`{c}` {t}" for c, t in zip(columns, types, strict=True))


@pytest.fixture(scope="module")
def silver(spark):
    """Two users on four movies; user 1 rated movies 30 and 10 in the same second (30 arrived first)."""
    rows = [
        ("d", 1, 20, 4.0, 100, 0),
        ("d", 1, 30, 5.0, 200, 1),
        ("d", 1, 10, 3.0, 200, 2),
        ("d", 2, 10, None, 50, 0),
        ("d", 2, 20, 2.0, 60, 1),
        ("d", 2, 30, 1.0, 70, 2),
    ]
    interactions = spark.createDataFrame(
        [(d, u, m, r, t, a, None, "movielens", "rating", None) for d, u, m, r, t, a in rows],
        "dataset string, user_id bigint, movie_id bigint, rating float, timestamp bigint, arrival bigint, "
        "event_time timestamp, origin string, kind string, event_id string",
    )
    events = spark.createDataFrame(
        [("d", "e1", 9, 10, "impression", None, T0, 0.5), ("d", "e2", 9, 10, "impression", None, T0, 0.25)],
        _schema(
            T.SILVER_EVENTS_COLUMNS, "string", "string", "bigint", "bigint", "string", "double", "timestamp", "double"
        ),
    )
    movies = spark.createDataFrame(
        [
            (
                f"d:{m}",
                "d",
                m,
                f"Movie {m}",
                1999,
                ["Drama"],
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "h",
                T0,
                None,
                True,
            )
            for m in (10, 20, 30, 40)
        ],
        _schema(
            T.SILVER_MOVIES_COLUMNS,
            "string",
            "string",
            "bigint",
            "string",
            "int",
            "array<string>",
            "bigint",
            "string",
            "string",
            "array<string>",
            "double",
            "double",
            "bigint",
            "double",
            "string",
            "timestamp",
            "timestamp",
            "boolean",
        ),
    )
    return {T.SILVER_INTERACTIONS: interactions, T.SILVER_EVENTS: events, "movies": movies}


def test_sequences_are_chronological_with_ties_in_arrival_order(spark, silver) -> None:
    rows = {r[T.USER_ID]: r for r in build_gold_user_sequences(spark, silver).collect()}
    assert (rows[1][T.ITEM_IDS], rows[1][T.TIMESTAMPS], rows[1][T.RATINGS]) == (
        [20, 30, 10],
        [100, 200, 200],
        [4.0, 5.0, 3.0],
    )
    assert rows[2][T.RATINGS] == [1.0, 2.0, 1.0]  # an interaction without a rating counts as 1
    assert rows[2][T.LENGTH] == 3


def test_item_features_carry_popularity_and_propensity(spark, silver) -> None:
    rows = {r[T.MOVIE_ID]: r for r in build_gold_item_features(spark, silver).collect()}
    assert [rows[m][T.N_INTERACTIONS] for m in (10, 20, 30, 40)] == [2, 2, 2, 0]
    assert rows[10][T.POPULARITY_SHARE] == pytest.approx(2 / 6)
    assert rows[40][T.PROPENSITY_POP] == 0.0 and rows[10][T.PROPENSITY_POP] == 1.0
    assert (rows[10][T.N_IMPRESSIONS], rows[10][T.PROPENSITY_LOGGED]) == (2, pytest.approx(0.375))
    assert rows[40][T.POPULARITY_RANK] == 4 and rows[10][T.MEAN_RATING] == pytest.approx(3.0)


def test_cooccurrence_counts_pairs_within_the_window(spark, silver) -> None:
    out = build_gold_item_cooccurrence(spark, {**silver, "window": 1, "min_count": 1}).collect()
    pairs = {(r[T.ITEM_A], r[T.ITEM_B]): (r[T.COUNT], r[T.N_USERS_PAIR], r[T.PMI]) for r in out}
    # user 1: 20-30, 30-10 ; user 2: 10-20, 20-30  -> 20-30 twice, the others once
    assert {k: v[:2] for k, v in pairs.items()} == {(20, 30): (2, 2), (10, 30): (1, 1), (10, 20): (1, 1)}
    total, m20, m30 = 4, 3, 3
    assert pairs[(20, 30)][2] == pytest.approx(math.log(2 * total / (m20 * m30)))
