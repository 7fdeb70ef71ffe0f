"""Data contracts: named rules per silver table; rows that break any rule go to quarantine with the reasons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from . import tables as T

VIOLATIONS = "_violations"


@dataclass(frozen=True)
class Rule:
    """A named check; ``broken`` is true on rows that violate it (null counts as not broken)."""

    name: str
    broken: Column


@dataclass(frozen=True)
class Contract:
    """The rules of one table plus its key (duplicates beyond the first by ``order`` are violations)."""

    table: str
    rules: Sequence[Rule]
    key: Sequence[str] = ()
    order: Sequence[Column] = ()


@dataclass(frozen=True)
class Checked:
    """The outcome of applying a contract: rows that passed, rows for quarantine."""

    valid: DataFrame
    rejected: DataFrame


def tagged(df: DataFrame, contract: Contract) -> DataFrame:
    """Add an array column of the names of the rules each row breaks (the key rule included)."""
    reasons = [F.when(F.coalesce(r.broken, F.lit(False)), F.lit(r.name)) for r in contract.rules]
    if contract.key:
        w = Window.partitionBy(*contract.key).orderBy(*contract.order)
        dup = F.row_number().over(w) > 1
        reasons.append(F.when(dup, F.lit("duplicate_key(" + ",".join(contract.key) + ")")))
    return df.withColumn(VIOLATIONS, F.filter(F.array(*reasons), lambda x: x.isNotNull()))


RAW = "_raw"  # struct of the bronze row's business columns, kept for the quarantine payload


def split(df: DataFrame, table: str, *, checked_at: datetime) -> Checked:
    """Split a tagged frame into valid rows and quarantine rows (table, reason, JSON payload, source, time)."""
    ok = F.size(VIOLATIONS) == 0
    valid = df.where(ok).drop(VIOLATIONS, RAW)
    rejected = df.where(~ok).select(
        F.lit(table).alias(T.TABLE),
        F.array_join(VIOLATIONS, "; ").alias(T.REASON),
        F.to_json(F.col(RAW)).alias(T.PAYLOAD),
        F.col(T.SOURCE_FILE),
        F.col(T.CHECKSUM),
        F.lit(checked_at).cast("timestamp").alias(T.QUARANTINED_AT),
    )
    return Checked(valid, rejected)


def raw_struct(columns: Sequence[str]) -> Column:
    """The bronze business columns packed for the payload."""
    return F.struct(*[F.col(c) for c in columns]).alias(RAW)


def is_half_step(col: Column, low: float = 0.5, high: float = 5.0) -> Column:
    """True when a rating lies in [low, high] on a 0.5 grid."""
    return col.between(low, high) & ((col * 2) == F.floor(col * 2))


def raw(column: str) -> Column:
    """A bronze column as it arrived (inside the RAW struct)."""
    return F.col(f"{RAW}.`{column}`")


def bad_cast(column: str, typed: Column) -> Column:
    """The raw string is present but did not parse to the typed value."""
    return ~missing(column) & typed.isNull()


def missing(column: str) -> Column:
    """The raw string is null or blank."""
    return raw(column).isNull() | (F.trim(raw(column)) == "")
