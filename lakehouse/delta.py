"""Delta table storage: delta-rs (embedded, default) or delta-spark (cluster, when jars are configured).

Spark computes; :class:`DeltaRsBackend` commits the result through Arrow into delta-rs and
hands Spark the current snapshot's parquet files to read. delta-rs writes no deletion
vectors, so reading the snapshot's file list is exact. Timestamps are tz-aware UTC, which
keeps tables at reader 1 / writer 2.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession

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


def spark_to_arrow(df: DataFrame) -> pa.Table:
    """Collect a Spark DataFrame as one Arrow table (driver memory bounds the size)."""
    return _nullable(df.toArrow())


class DeltaRsBackend:
    """Tables under ``root/<name>``, written and merged by delta-rs."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

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
        """One atomic commit; returns the number of rows written."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            self.path(table), _nullable(data), mode=mode, schema_mode="merge" if mode == "append" else "overwrite"
        )
        log.info("%s %s: %d rows (version %s)", mode, table, data.num_rows, self.version(table))
        return int(data.num_rows)

    def overwrite(self, table: str, df: DataFrame) -> int:
        return self.write_arrow(table, spark_to_arrow(df), "overwrite")

    def append(self, table: str, df: DataFrame) -> int:
        return self.write_arrow(table, spark_to_arrow(df), "append")

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
        """Apply a staged SCD2 change set (see :func:`lakehouse.silver.stage_scd2`) in one MERGE commit.

        Rows whose ``merge_key`` matches a current version with a different hash close it;
        rows with a NULL ``merge_key`` never match and are inserted as the new current versions.
        """
        source = spark_to_arrow(staged)
        columns = [c for c in source.column_names if c != "merge_key"]
        if not self.exists(table):
            return {
                "num_target_rows_inserted": self.write_arrow(
                    table, source.filter(pc.is_null(source["merge_key"])).select(columns), "overwrite"
                )
            }
        metrics = (
            self.table(table)
            .merge(
                source=source,
                source_alias="s",
                target_alias="t",
                predicate=f"t.{key} = s.merge_key AND t.{is_current} = true",
            )
            .when_matched_update(
                updates={is_current: "false", valid_to: f"s.{valid_from}"},
                predicate=f"t.{hash_column} <> s.{hash_column}",
            )
            .when_not_matched_insert(updates={c: f"s.{c}" for c in columns})
            .execute()
        )
        log.info("merge %s: %s", table, metrics)
        return metrics

    def distinct_values(self, table: str, column: str) -> set[str]:
        if not self.exists(table):
            return set()
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
    return DeltaRsBackend(root)
