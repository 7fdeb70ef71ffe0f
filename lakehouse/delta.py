"""Delta table storage: delta-rs (embedded, default) or delta-spark (cluster, when jars are configured).

Spark computes and its executors write the Parquet files; :class:`DeltaRsBackend` commits those
files to the Delta log with delta-rs (``add``/``remove`` actions built from the files' footers, so no
table row passes through the driver) and hands Spark the current snapshot's files to read. delta-rs
writes no deletion vectors, so reading the snapshot's file list is exact. Timestamps are tz-aware
UTC (Parquet TIMESTAMP_MICROS), which keeps tables at reader 1 / writer 2.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .files import DataFile, local_path, write_files

log = logging.getLogger(__name__)

DELTA_JARS_ENV = "APEX_DELTA_SPARK_JARS"


class DeltaBackend(Protocol):
    """What the pipeline needs from a Delta engine."""

    root: Path

    def exists(self, table: str) -> bool: ...
    def read(self, spark: SparkSession, table: str, version: int | None = None) -> DataFrame: ...
    def overwrite(self, table: str, df: DataFrame) -> int: ...
    def append(self, table: str, df: DataFrame) -> int: ...
    def merge_scd2(
        self,
        table: str,
        staged: DataFrame,
        *,
        key: str,
        hash_column: str,
        valid_from: str,
        valid_to: str,
        is_current: str,
    ) -> dict[str, Any]: ...
    def distinct_values(self, table: str, column: str) -> set[str]: ...
    def version(self, table: str) -> int | None: ...


def _nullable(table: pa.Table) -> pa.Table:
    """All top-level fields nullable, so a later append with nulls matches the table schema."""
    schema = pa.schema([f.with_nullable(True) for f in table.schema])
    return table.cast(schema)


def arrow_schema(df: DataFrame) -> pa.Schema:
    """The Delta schema of a Spark DataFrame (all top-level fields nullable; timestamps UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return pa.schema([f.with_nullable(True) for f in to_arrow_schema(df.schema, timezone="UTC")])


def _add(f: DataFile) -> AddAction:
    return AddAction(f.path, f.size, {}, f.modification_time, True, f.stats)


class DeltaRsBackend:
    """Tables under ``root/<name>``: Spark writes the Parquet files, delta-rs commits them to the Delta log.

    Rows never pass through the driver: executors write the files (:func:`lakehouse.files.write_files`),
    the driver reads their footers and commits ``add`` actions (and ``remove`` actions for overwrites and
    merges) in one delta-rs transaction. A failed commit leaves only unreferenced files, which vacuum drops.
    """

    def __init__(self, root: Path | str, spark: SparkSession | None = None) -> None:
        self.root = Path(root)
        self.spark = spark

    def path(self, table: str) -> str:
        return str(self.root / table)

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.path(table))

    def table(self, table: str, version: int | None = None) -> DeltaTable:
        return DeltaTable(self.path(table), version=version)

    def read(self, spark: SparkSession, table: str, version: int | None = None) -> DataFrame:
        """The table (at a version, for time travel) as a Spark DataFrame."""
        from pyspark.sql.pandas.types import from_arrow_schema

        dt = self.table(table, version)
        uris = dt.file_uris()
        if uris:
            return spark.read.parquet(*uris)
        return spark.createDataFrame([], from_arrow_schema(pa.schema(dt.schema().to_arrow())))

    def read_arrow(self, table: str, columns: list[str] | None = None, version: int | None = None) -> pa.Table:
        return self.table(table, version).to_pyarrow_table(columns=columns)

    def write_arrow(self, table: str, data: pa.Table, mode: Literal["append", "overwrite"]) -> int:
        """One atomic commit of an in-memory Arrow table (small tables and tests); returns the rows written."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            self.path(table), _nullable(data), mode=mode, schema_mode="merge" if mode == "append" else "overwrite"
        )
        log.info("%s %s: %d rows (version %s)", mode, table, data.num_rows, self.version(table))
        return int(data.num_rows)

    def commit(
        self,
        table: str,
        schema: pa.Schema,
        added: list[DataFile],
        mode: Literal["append", "overwrite"],
        removed: list[RemoveAction] | None = None,
        operation: str = "WRITE",
    ) -> None:
        """One delta-rs transaction naming files already in the table directory (a new table is created)."""
        props = CommitProperties(custom_metadata={"apex.operation": operation, "apex.files": len(added)})
        actions: list[AddAction | RemoveAction] = [*(removed or []), *map(_add, added)]
        if not self.exists(table):
            create_table_with_add_actions(
                self.path(table), DeltaSchema.from_arrow(schema), [_add(f) for f in added], mode="error",
                commit_properties=props,
            )  # fmt: skip
        else:
            self.table(table).create_write_transaction(actions, mode, schema, commit_properties=props)

    def write(self, table: str, df: DataFrame, mode: Literal["append", "overwrite"]) -> int:
        """Executors write ``df``'s files, the driver commits them; returns the number of rows written."""
        table_dir = self.root / table
        table_dir.mkdir(parents=True, exist_ok=True)
        files = write_files(df, table_dir)
        self.commit(table, arrow_schema(df), files, mode, operation=mode.upper())
        rows = sum(f.rows for f in files)
        log.info("%s %s: %d rows in %d file(s) (version %s)", mode, table, rows, len(files), self.version(table))
        return rows

    def overwrite(self, table: str, df: DataFrame) -> int:
        return self.write(table, df, "overwrite")

    def append(self, table: str, df: DataFrame) -> int:
        return self.write(table, df, "append")

    def merge_scd2(
        self,
        table: str,
        staged: DataFrame,
        *,
        key: str,
        hash_column: str,
        valid_from: str,
        valid_to: str,
        is_current: str,
    ) -> dict[str, Any]:
        """Apply a staged SCD2 change set (see :func:`lakehouse.silver.stage_scd2`) in one commit.

        Rows whose ``merge_key`` matches a current version with a different hash close it; rows with a
        NULL ``merge_key`` never match and are inserted as the new current versions. Executors rewrite
        only the files that hold a closed version (plus the inserted rows); the commit removes those
        files and adds the rewritten ones, so unchanged files stay as they are.
        """
        spark = staged.sparkSession
        columns = [c for c in staged.columns if c != "merge_key"]
        if not self.exists(table):
            inserted = self.overwrite(table, staged.where(F.col("merge_key").isNull()).select(*columns))
            return {"num_target_rows_inserted": inserted, "num_target_rows_updated": 0}
        dt = self.table(table)
        table_dir = self.root / table
        actions = pa.table(dt.get_add_actions(flatten=True)).select(["path", "size_bytes", "num_records"]).to_pylist()
        current = {os.path.normpath(str(table_dir / unquote(a["path"]))): a for a in actions}
        target = self.read(spark, table).withColumn("_file", F.col("_metadata.file_path"))
        source = staged.where(F.col("merge_key").isNotNull()).select(
            F.col("merge_key").alias("_mk"), F.col(hash_column).alias("_s_hash"), F.col(valid_from).alias("_s_from")
        )
        matched = target.join(source, (F.col(key) == F.col("_mk")) & F.col(is_current), "left")
        update = F.coalesce(F.col("_mk").isNotNull() & (F.col(hash_column) != F.col("_s_hash")), F.lit(False))
        changed = {is_current: F.lit(False), valid_to: F.col("_s_from")}
        rewritten = matched.select(
            *[F.when(update, changed[c]).otherwise(F.col(c)).alias(c) if c in changed else F.col(c) for c in columns],
            "_file",
            update.alias("_updated"),
        )
        # only the names of the files holding a closed version (and how many) reach the driver
        hits = rewritten.where("_updated").groupBy("_file").agg(F.count(F.lit(1)).alias("n")).collect()
        uris = [r["_file"] for r in hits]
        # source rows that match no current version are inserted (WHEN NOT MATCHED), with a merge key or not
        live = target.where(F.col(is_current)).select(F.col(key).alias("_live"))
        inserts = staged.join(live, F.col("merge_key") == F.col("_live"), "left_anti").select(*columns)
        out = inserts.unionByName(rewritten.where(F.col("_file").isin(*uris)).select(*columns)) if uris else inserts
        files = write_files(out, table_dir)
        if not files and not uris:
            return {"num_target_rows_inserted": 0, "num_target_rows_updated": 0}
        now = int(time.time() * 1000)
        gone = [current[local_path(u)] for u in uris]
        removed = [RemoveAction(a["path"], True, now, int(a["size_bytes"])) for a in gone]
        self.commit(table, arrow_schema(out), files, "append", removed, operation="MERGE")
        updated = sum(int(r["n"]) for r in hits)
        inserted = sum(f.rows for f in files) - sum(int(a["num_records"]) for a in gone)
        metrics = {"num_target_rows_inserted": inserted, "num_target_rows_updated": updated}
        log.info("merge %s: %s (%d file(s) rewritten)", table, metrics, len(gone))
        return metrics

    def distinct_values(self, table: str, column: str) -> set[str]:
        """Distinct values of a column, computed by Spark when a session is at hand (only they reach the driver)."""
        if not self.exists(table):
            return set()
        spark = self.spark or SparkSession.getActiveSession()
        if spark is not None:
            rows = self.read(spark, table).select(column).distinct().collect()
            return {r[0] for r in rows if r[0] is not None}
        values = self.read_arrow(table, columns=[column])[column].unique().to_pylist()
        return {v for v in values if v is not None}

    def version(self, table: str) -> int | None:
        return self.table(table).version() if self.exists(table) else None

    def history(self, table: str) -> list[dict[str, Any]]:
        return self.table(table).history()

    def load_as_of(self, table: str, when: int | datetime) -> DeltaTable:
        """Time travel: the table at a version number or a tz-aware timestamp."""
        dt = self.table(table)
        dt.load_as_version(when)
        return dt

    def optimize(self, table: str) -> dict[str, Any]:
        return self.table(table).optimize.compact()

    def vacuum(self, table: str, retention_hours: int = 168) -> list[str]:
        return self.table(table).vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=retention_hours >= 168
        )


class SparkDeltaBackend:
    """Spark-native Delta (delta-spark) for clusters whose Spark has the Delta jars (APEX_DELTA_SPARK_JARS)."""

    def __init__(self, root: Path | str, spark: SparkSession) -> None:
        if not os.environ.get(DELTA_JARS_ENV):
            raise RuntimeError(f"SparkDeltaBackend needs the Delta jars: set {DELTA_JARS_ENV} to their paths")
        from delta.tables import DeltaTable as SparkDeltaTable

        self.root, self.spark, self._dt = Path(root), spark, SparkDeltaTable

    def path(self, table: str) -> str:
        return str(self.root / table)

    def exists(self, table: str) -> bool:
        return self._dt.isDeltaTable(self.spark, self.path(table))

    def read(self, spark: SparkSession, table: str, version: int | None = None) -> DataFrame:
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def _write(self, df: DataFrame, table: str, mode: str) -> int:
        df.write.format("delta").mode(mode).option("mergeSchema", "true").save(self.path(table))
        return int(self.read(self.spark, table).count()) if mode == "overwrite" else int(df.count())

    def overwrite(self, table: str, df: DataFrame) -> int:
        return self._write(df, table, "overwrite")

    def append(self, table: str, df: DataFrame) -> int:
        return self._write(df, table, "append")

    def merge_scd2(
        self,
        table: str,
        staged: DataFrame,
        *,
        key: str,
        hash_column: str,
        valid_from: str,
        valid_to: str,
        is_current: str,
    ) -> dict[str, Any]:
        from pyspark.sql import functions as F

        columns = [c for c in staged.columns if c != "merge_key"]
        if not self.exists(table):
            return {
                "num_target_rows_inserted": self._write(
                    staged.where(F.col("merge_key").isNull()).select(*columns), table, "overwrite"
                )
            }
        (
            self._dt.forPath(self.spark, self.path(table))
            .alias("t")
            .merge(staged.alias("s"), f"t.{key} = s.merge_key AND t.{is_current} = true")
            .whenMatchedUpdate(
                condition=f"t.{hash_column} <> s.{hash_column}", set={is_current: "false", valid_to: f"s.{valid_from}"}
            )
            .whenNotMatchedInsert(values={c: f"s.{c}" for c in columns})
            .execute()
        )
        return {}

    def distinct_values(self, table: str, column: str) -> set[str]:
        if not self.exists(table):
            return set()
        return {r[0] for r in self.read(self.spark, table).select(column).distinct().collect() if r[0] is not None}

    def version(self, table: str) -> int | None:
        if not self.exists(table):
            return None
        return int(self._dt.forPath(self.spark, self.path(table)).history(1).collect()[0]["version"])


def backend_for(root: Path | str, spark: SparkSession) -> DeltaBackend:
    """delta-spark when its jars are configured, else the embedded delta-rs engine."""
    if os.environ.get(DELTA_JARS_ENV):
        return SparkDeltaBackend(root, spark)
    return DeltaRsBackend(root, spark)
