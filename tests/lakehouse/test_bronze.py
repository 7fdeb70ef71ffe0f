"""Bronze jobs on small real slices: raw strings, metadata, genre names, idempotent re-ingestion."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import tables as T
from lakehouse.bronze import build_bronze_events, build_bronze_movies, build_bronze_ratings, source_file
from lakehouse.config import LakehouseConfig
from lakehouse.delta import DeltaRsBackend
from lakehouse.pipeline import RunResult, run_bronze

pytestmark = pytest.mark.spark
AT = datetime(2026, 11, 1, tzinfo=UTC)


def test_ml100k_ratings_arrive_as_raw_strings_with_ingestion_metadata(spark, ml100k_slice: Path) -> None:
    f = source_file("ml-100k/u.data", "ml-100k", "ml-100k", ml100k_slice / "u.data")
    df = build_bronze_ratings(spark, {"files": [f], "ingested_at": AT})
    rows = df.orderBy(T.LINE).limit(1).collect()
    assert df.count() == 3000
    assert dict(rows[0].asDict(), **{T.LINE: 0}) == {
        T.DATASET: "ml-100k",
        T.USER_ID: "196",
        T.MOVIE_ID: "242",
        T.RATING: "3",
        T.TIMESTAMP: "881250949",
        T.LINE: 0,
        T.INGESTED_AT: AT.replace(tzinfo=None),
        T.SOURCE: "ml-100k/u.data",
        T.SOURCE_FILE: str(f.path),
        T.CHECKSUM: f.checksum,
    }


def test_ml100k_genre_flags_become_genre_names(spark, ml100k_slice: Path) -> None:
    f = source_file("ml-100k/u.item", "ml-100k", "ml-100k", ml100k_slice / "u.item")
    df = build_bronze_movies(spark, {"files": [f], "ingested_at": AT})
    toy = df.where(f"{T.MOVIE_ID} = '1'").first()
    assert df.count() == 1682
    assert (toy[T.TITLE], toy[T.GENRES], toy[T.RELEASE_DATE]) == (
        "Toy Story (1995)",
        "Animation|Children's|Comedy",
        "01-Jan-1995",
    )


def test_event_exports_in_json_lines_and_parquet_read_the_same(spark, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    event = {
        T.EVENT_ID: "e1",
        T.USER_ID: 7,
        T.MOVIE_ID: 1,
        T.KIND: "rating",
        T.VALUE: 4.5,
        T.CREATED_AT: "2026-10-01T12:00:00+00:00",
        T.PROPENSITY: None,
    }
    (tmp_path / "a.jsonl").write_text(json.dumps(event) + "\n")
    pq.write_table(
        pa.Table.from_pylist([{**event, T.CREATED_AT: datetime(2026, 10, 1, 12, tzinfo=UTC)}]), tmp_path / "b.parquet"
    )
    files = [
        source_file("events/a.jsonl", "events", "json", tmp_path / "a.jsonl"),
        source_file("events/b.parquet", "events", "parquet", tmp_path / "b.parquet"),
    ]
    rows = build_bronze_events(spark, {"files": files, "ingested_at": AT}).orderBy(T.SOURCE).collect()
    assert [(r[T.USER_ID], r[T.VALUE], r[T.KIND], r[T.PROPENSITY]) for r in rows] == [("7", "4.5", "rating", None)] * 2
    assert rows[0][T.CREATED_AT].startswith("2026-10-01T12:00")
    assert rows[1][T.CREATED_AT].startswith("2026-10-01 12:00")


def test_reingesting_the_same_files_appends_nothing(spark, ml100k_slice: Path, tmp_path: Path) -> None:
    config = LakehouseConfig(root=tmp_path / "lake", datasets=(str(ml100k_slice),), reference_dataset=str(ml100k_slice))
    store = DeltaRsBackend(config.root)
    first, second = RunResult(AT), RunResult(AT)
    run_bronze(spark, store, config, first)
    run_bronze(spark, store, config, second)
    assert (first.rows(T.BRONZE_RATINGS), first.rows(T.BRONZE_MOVIES)) == (3000, 1682)
    assert (second.rows(T.BRONZE_RATINGS), second.rows(T.BRONZE_MOVIES)) == (0, 0)
    assert store.version(T.BRONZE_RATINGS) == 0
    assert store.read(spark, T.BRONZE_RATINGS).count() == 3000
