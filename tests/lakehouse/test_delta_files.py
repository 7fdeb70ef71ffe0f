"""Executors write the table files; the driver commits only their metadata (lakehouse.files, DeltaRsBackend)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakehouse.delta import DeltaRsBackend
from lakehouse.files import STAGING

pytestmark = pytest.mark.spark
AT = datetime(2026, 11, 1, tzinfo=UTC)


def _frame(spark, lo: int, hi: int):
    from pyspark.sql import functions as F

    return spark.range(lo, hi, numPartitions=2).select(
        F.col("id"),
        F.concat(F.lit("k"), F.col("id").cast("string")).alias("key"),
        F.when(F.col("id") % 2 == 0, F.lit(1.5)).alias("score"),
        F.lit(AT).cast("timestamp").alias("at"),
        F.array(F.col("id"), F.col("id") + 1).alias("pair"),
    )


def test_spark_files_are_committed_with_footer_statistics(spark, tmp_path: Path) -> None:
    store = DeltaRsBackend(tmp_path, spark)
    assert store.overwrite("t", _frame(spark, 0, 10)) == 10
    assert store.append("t", _frame(spark, 10, 16)) == 6
    dt = DeltaTable(str(tmp_path / "t"))
    assert dt.version() == 1 and dt.protocol().min_reader_version == 1 and dt.protocol().min_writer_version == 2
    adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    assert sum(a["num_records"] for a in adds) == 16 and len(adds) == 4
    first = min(adds, key=lambda a: a["min.id"])
    assert (first["min.id"], first["max.id"], first["null_count.score"]) == (0, 4, 2)
    assert first["min.key"] == "k0" and first["max.key"] == "k4"
    data = dt.to_pyarrow_table().sort_by("id")
    assert data["id"].to_pylist() == list(range(16))
    assert data.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert data["pair"].to_pylist()[3] == [3, 4] and data["at"].to_pylist()[0] == AT
    assert not (tmp_path / "t" / STAGING).exists()  # nothing left of Spark's staging folder
    # an overwrite removes every earlier file in the same commit; an empty one leaves an empty table
    assert store.overwrite("t", _frame(spark, 0, 0)) == 0
    assert DeltaTable(str(tmp_path / "t")).to_pyarrow_table().num_rows == 0
    assert store.read(spark, "t").count() == 0


def test_a_merge_rewrites_only_the_files_it_touches(spark, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    store = DeltaRsBackend(tmp_path, spark)
    dim = spark.createDataFrame(
        [(f"m{i}", f"h{i}", AT, None, True) for i in range(6)],
        "movie_key string, attr_hash string, valid_from timestamp, valid_to timestamp, is_current boolean",
    ).repartition(3, "movie_key")
    store.overwrite("dim", dim)
    before = {a["path"] for a in pa.table(DeltaTable(str(tmp_path / "dim")).get_add_actions()).to_pylist()}
    later = datetime(2026, 11, 2, tzinfo=UTC)
    new_version = spark.createDataFrame([("m1", "h1b", later, None, True)], dim.schema)
    staged = new_version.withColumn("merge_key", F.col("movie_key")).unionByName(
        new_version.unionByName(spark.createDataFrame([("m9", "h9", later, None, True)], dim.schema)).withColumn(
            "merge_key", F.lit(None).cast("string")
        )
    )
    kw = {"key": "movie_key", "hash_column": "attr_hash", "valid_from": "valid_from"}
    metrics = store.merge_scd2("dim", staged, valid_to="valid_to", is_current="is_current", **kw)
    assert metrics == {"num_target_rows_inserted": 2, "num_target_rows_updated": 1}
    dt = DeltaTable(str(tmp_path / "dim"))
    after = {a["path"] for a in pa.table(dt.get_add_actions()).to_pylist()}
    assert len(before - after) == 1  # the one file holding m1's current version was rewritten
    commit = json.loads((tmp_path / "dim" / "_delta_log" / f"{dt.version():020d}.json").read_text().splitlines()[0])
    assert "commitInfo" in commit
    rows = {(r["movie_key"], r["attr_hash"]): r for r in dt.to_pyarrow_table().to_pylist()}
    assert len(rows) == 8
    assert (rows[("m1", "h1")]["is_current"], rows[("m1", "h1")]["valid_to"]) == (False, later)
    assert rows[("m1", "h1b")]["is_current"] and rows[("m9", "h9")]["is_current"]
    assert rows[("m2", "h2")]["is_current"] and rows[("m2", "h2")]["valid_to"] is None
    # the same change set again matches no current version with another hash: nothing to do
    assert store.merge_scd2(
        "dim", staged.where("merge_key IS NOT NULL"), valid_to="valid_to", is_current="is_current", **kw
    ) == {
        "num_target_rows_inserted": 0,
        "num_target_rows_updated": 0,
    }
