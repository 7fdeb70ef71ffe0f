"""Spark writes a table's Parquet files on its executors; the Delta commit only needs their metadata.

:func:`write_files` has Spark write a DataFrame into a staging folder inside the table directory, in
parallel, one file per partition; the finished files are renamed into the table directory (a metadata
operation) and described from their Parquet footers: relative path, size, modification time, row count,
null counts and exact min/max of integer and short string columns. That description is all that
reaches the driver; :mod:`lakehouse.delta` turns it into Delta ``add`` actions committed by delta-rs.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame

STAGING = "_staging"  # hidden from Delta readers and vacuum: files there are never part of a snapshot
STRING_STATS_MAX = 32  # longer strings get no min/max (a truncated max would be wrong for file skipping)


@dataclass(frozen=True)
class DataFile:
    """One Parquet file in a table directory, as the Delta log describes it."""

    path: str  # relative to the table directory
    size: int
    modification_time: int  # milliseconds since the epoch
    rows: int
    stats: str  # Delta statistics JSON: numRecords, nullCount, minValues, maxValues


def _stat_value(value: object, physical: str) -> int | str | None:
    """A footer min/max usable as Delta statistics: integers, and strings short enough to be exact."""
    if physical in ("INT32", "INT64") and isinstance(value, int):
        return value
    if physical == "BYTE_ARRAY" and isinstance(value, str) and len(value) <= STRING_STATS_MAX:
        return value
    return None


def file_stats(meta: pq.FileMetaData, schema: pa.Schema) -> str:
    """Delta statistics of a Parquet file from its footer (top-level primitive columns only)."""
    leaves = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    nulls: dict[str, int] = {}
    lows: dict[str, object] = {}
    highs: dict[str, object] = {}
    for field in schema:
        if pa.types.is_nested(field.type) or field.name not in leaves:
            continue
        column, name = leaves[field.name], field.name
        count, low, high = 0, None, None
        bounded = pa.types.is_integer(field.type) or pa.types.is_string(field.type)
        for g in range(meta.num_row_groups):
            chunk = meta.row_group(g).column(column)
            st = chunk.statistics
            if st is None or not st.has_null_count:
                break
            count += st.null_count
            if not bounded or chunk.num_values == st.null_count:
                continue
            lo = _stat_value(st.min, st.physical_type) if st.has_min_max else None
            hi = _stat_value(st.max, st.physical_type) if st.has_min_max else None
            if lo is None or hi is None:
                bounded = False
                continue
            low = lo if low is None else min(low, lo)
            high = hi if high is None else max(high, hi)
        else:
            nulls[name] = count
            if bounded and low is not None:
                lows[name], highs[name] = low, high
    return json.dumps(
        {"numRecords": meta.num_rows, "minValues": lows, "maxValues": highs, "nullCount": nulls},
        separators=(",", ":"),
    )


def describe(path: Path, table_dir: Path) -> DataFile:
    """The Delta description of a file already in the table directory (reads only its footer)."""
    pf = pq.ParquetFile(path)
    st = path.stat()
    return DataFile(
        path=path.relative_to(table_dir).as_posix(),
        size=st.st_size,
        modification_time=int(st.st_mtime * 1000),
        rows=pf.metadata.num_rows,
        stats=file_stats(pf.metadata, pf.schema_arrow),
    )


def write_files(df: DataFrame, table_dir: Path) -> list[DataFile]:
    """Spark writes ``df`` as Parquet into ``table_dir`` (executors, in parallel); returns the files' metadata.

    Empty files are deleted (an empty table is a commit with no files). Nothing is committed here: until
    the Delta log names them, the new files are invisible to readers, and vacuum removes them if the
    commit never happens.
    """
    spark = df.sparkSession
    # Delta timestamps are microseconds since the epoch (UTC); Spark's default INT96 is not in the protocol
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    staging = table_dir / STAGING / uuid.uuid4().hex
    df.write.mode("error").parquet(staging.resolve().as_uri())
    out = []
    try:
        for part in sorted(staging.glob("part-*.parquet")):
            final = table_dir / part.name  # Spark's names carry the write job's UUID, so they never collide
            os.replace(part, final)
            described = describe(final, table_dir)
            if described.rows == 0:
                final.unlink()
                continue
            out.append(described)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            (table_dir / STAGING).rmdir()
        except OSError:
            pass
    return out


def local_path(uri: str) -> str:
    """A file URI or path as Spark reports it (``_metadata.file_path``), as a normalised local path."""
    parsed = urlparse(uri)
    path = unquote(parsed.path) if parsed.scheme in ("file", "") else uri
    return os.path.normpath(path)
