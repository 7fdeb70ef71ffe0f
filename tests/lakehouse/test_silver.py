"""Silver jobs: contracts send bad rows to quarantine with reasons; movies form an SCD2 history."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse import tables as T
from lakehouse.config import LakehouseConfig
from lakehouse.delta import DeltaRsBackend
from lakehouse.pipeline import run_pipeline

pytestmark = pytest.mark.spark
LOAD_1 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
LOAD_2 = LOAD_1 + timedelta(days=1)


def _ratings_with_bad_rows(folder: Path) -> None:
    bad = [
        "1\t1\t7\t881250949",  # rating off the scale
        "abc\t1\t3\t881250949",  # user id not an integer
        "2\t99999\t4\t881250949",  # movie not in u.item
        "3\t1\t4\t99999999999",  # timestamp after the run
        "196\t242\t5\t881250950",
    ]  # same (user, movie) as line 1, later: keeps this one
    with open(folder / "u.data", "a") as fh:
        fh.write("\n".join(bad) + "\n")


def _events(folder: Path) -> None:
    def ev(i: str, **kw: object) -> str:
        base = {
            T.EVENT_ID: i,
            T.USER_ID: 5,
            T.MOVIE_ID: 1,
            T.KIND: "click",
            T.VALUE: None,
            T.CREATED_AT: "2026-10-30T10:00:00+00:00",
            T.PROPENSITY: None,
        }
        return json.dumps({**base, **kw})

    lines = [
        ev("ok-1"),
        ev("ok-2", kind="rating", value=4.5),
        ev("ok-3", kind="impression", propensity=0.25),
        ev("ok-1", movie_id=2),  # duplicate event id
        ev("bad-kind", kind="purchase"),
        ev("bad-rating", kind="rating", value=4.25),
        ev("bad-imp", kind="impression"),
        ev("bad-time", created_at="not a time"),
        ev("bad-movie", movie_id=99999),
        ev("future", created_at="2030-01-01T00:00:00+00:00"),
    ]
    (folder / "events-0001.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def lake(
    spark, ml100k_slice: Path, ml_small_slice: Path, tmdb_slice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LakehouseConfig, dict[str, Path]]:
    """Bronze + silver over a slice of ml-100k with bad ratings and events, TMDB joined via ml-latest-small."""
    base = tmp_path_factory.mktemp("silver")
    ml = base / "ml-100k"
    shutil.copytree(ml100k_slice, ml)
    _ratings_with_bad_rows(ml)
    events = base / "events"
    events.mkdir()
    _events(events)
    config = LakehouseConfig(
        root=base / "lake",
        datasets=(str(ml),),
        reference_dataset=str(ml_small_slice),
        tmdb_dir=tmdb_slice,
        events_dir=events,
        events_dataset="ml-100k",
    )
    run_pipeline(config, spark=spark, layers=("bronze", "silver"), as_of=LOAD_1)
    return config, {"ml": ml}


def _quarantine(spark, config: LakehouseConfig, table: str) -> dict[str, str]:
    rows = DeltaRsBackend(config.root).read(spark, T.QUARANTINE).where(f"`{T.TABLE}` = '{table}'").collect()
    return {r[T.PAYLOAD]: r[T.REASON] for r in rows}


def test_bad_ratings_are_quarantined_with_their_reasons(spark, lake) -> None:
    config, _ = lake
    reasons = sorted(_quarantine(spark, config, T.SILVER_INTERACTIONS).values())
    assert reasons == [
        "duplicate_key(dataset,user_id,movie_id)",
        "rating_out_of_range",
        "timestamp_out_of_range",
        "unknown_movie",
        "user_id_not_integer",
    ]
    interactions = DeltaRsBackend(config.root).read(spark, T.SILVER_INTERACTIONS)
    kept = interactions.where(f"{T.USER_ID} = 196 AND {T.MOVIE_ID} = 242").first()
    assert kept[T.TIMESTAMP] == 881250950
    assert interactions.where(f"{T.ORIGIN} = 'movielens'").count() == 3000 + 5 - 5


def test_bad_events_are_quarantined_and_good_ones_become_interactions(spark, lake) -> None:
    config, _ = lake
    by_id = {json.loads(p)[T.EVENT_ID]: r for p, r in _quarantine(spark, config, T.SILVER_EVENTS).items()}
    assert by_id == {
        "ok-1": "duplicate_key(event_id)",
        "bad-kind": "kind_not_allowed",
        "bad-rating": "rating_value_out_of_range",
        "bad-imp": "impression_without_propensity",
        "bad-time": "created_at_not_timestamp",
        "bad-movie": "unknown_movie",
        "future": "created_at_in_future",
    }
    store = DeltaRsBackend(config.root)
    assert sorted(r[T.EVENT_ID] for r in store.read(spark, T.SILVER_EVENTS).collect()) == ["ok-1", "ok-2", "ok-3"]
    site = store.read(spark, T.SILVER_INTERACTIONS).where(f"{T.ORIGIN} = 'events'").orderBy(T.EVENT_ID).collect()
    assert [(r[T.USER_ID], r[T.KIND], r[T.RATING]) for r in site] == [
        (T.EVENT_USER_OFFSET + 5, "click", None),
        (T.EVENT_USER_OFFSET + 5, "rating", 4.5),
    ]


def test_ml100k_movies_join_tmdb_through_exact_titles(spark, lake) -> None:
    config, _ = lake
    movies = DeltaRsBackend(config.root).read(spark, T.SILVER_MOVIES)
    toy = movies.where(f"{T.MOVIE_KEY} = 'ml-100k:1'").first()
    assert (toy[T.TMDB_ID], toy[T.YEAR], toy[T.GENRES]) == (862, 1995, ["Animation", "Children's", "Comedy"])
    assert "toy" in toy[T.KEYWORDS] and toy[T.OVERVIEW].startswith("Led by Woody")


def test_movie_metadata_keeps_scd2_history_across_two_loads(spark, lake) -> None:
    config, paths = lake
    item = paths["ml"] / "u.item"
    lines = item.read_text("latin-1").splitlines()
    lines[0] = lines[0].replace("Toy Story (1995)", "Toy Story (1995) [remastered]")
    lines[1] = lines[1].replace("|0|1|1|0|", "|0|1|1|1|")  # GoldenEye gains Animation
    lines.append("1683|A Brand New Movie (2026)|01-Jan-2026||http://example.org|" + "|".join(["0"] * 18 + ["1"]))
    item.write_text("\n".join(lines) + "\n", encoding="latin-1")
    store = DeltaRsBackend(config.root)
    before = store.version(T.SILVER_MOVIES)
    run_pipeline(replace(config, events_dir=None), spark=spark, layers=("bronze", "silver"), as_of=LOAD_2)
    rows = store.read(spark, T.SILVER_MOVIES).where(f"{T.DATASET} = 'ml-100k'").collect()
    history = {}
    for r in rows:
        history.setdefault(r[T.MOVIE_ID], []).append((r[T.TITLE], r[T.VALID_FROM], r[T.VALID_TO], r[T.IS_CURRENT]))
    naive_1, naive_2 = LOAD_1.replace(tzinfo=None), LOAD_2.replace(tzinfo=None)
    assert sorted(history[1], key=lambda v: v[1]) == [
        ("Toy Story (1995)", naive_1, naive_2, False),
        ("Toy Story (1995) [remastered]", naive_2, None, True),
    ]
    assert len(history[2]) == 2 and sum(v[3] for v in history[2]) == 1
    assert history[3] == [("Four Rooms (1995)", naive_1, None, True)]
    assert history[1683] == [("A Brand New Movie (2026)", naive_2, None, True)]
    assert len(history) == 1683 and sum(len(v) for v in history.values()) == 1683 + 2
    # time travel: the version before the second load still shows the original title, current only
    old = store.read(spark, T.SILVER_MOVIES, version=before).where(f"{T.MOVIE_KEY} = 'ml-100k:1'").collect()
    assert [(r[T.TITLE], r[T.IS_CURRENT]) for r in old] == [("Toy Story (1995)", True)]
    # a re-run with nothing new merges nothing
    again = run_pipeline(replace(config, events_dir=None), spark=spark, layers=("bronze", "silver"), as_of=LOAD_2)
    assert (again.rows(T.BRONZE_MOVIES), again.rows(T.SILVER_MOVIES)) == (0, 0)
    assert store.read(spark, T.SILVER_MOVIES).where(f"{T.DATASET} = 'ml-100k'").count() == 1683 + 2


def test_the_latest_load_per_key_keeps_rows_with_a_missing_key(spark) -> None:
    """A newer load of a key supersedes the older one; a row whose key is missing is kept for the contract."""
    from lakehouse.silver import _latest_load

    old, new = LOAD_1.replace(tzinfo=None), LOAD_2.replace(tzinfo=None)
    rows = [
        ("a", "1", old, "a1-old"),
        ("a", "1", new, "a1-new"),
        ("a", "2", old, "a2"),
        ("b", "1", new, "b1"),
        ("a", None, old, "a-none-old"),
        ("a", None, new, "a-none-new"),
        (None, None, old, "none"),
    ]
    df = spark.createDataFrame(rows, f"dataset string, movie_id string, {T.INGESTED_AT} timestamp, tag string")
    kept = _latest_load(df, "dataset", "movie_id")
    assert kept.columns == df.columns
    assert sorted(r["tag"] for r in kept.collect()) == ["a-none-new", "a1-new", "a2", "b1", "none"]
