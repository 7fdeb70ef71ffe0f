"""Bronze -> Silver -> Gold in one run; every step idempotent and safe to re-run after a failure.

Bronze appends only files whose checksum is new (rows and checksum in one commit).
Silver and gold are rebuilt from bronze and replaced in one commit per table; the
movie dimension is merged (SCD2), and a re-run finds no change to merge.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import tables as T
from .bronze import BRONZE_BUILDERS, SourceFile, plan_ingest
from .config import LakehouseConfig, discover_sources
from .contracts import split
from .delta import DeltaBackend, backend_for
from .gold import build_gold_item_cooccurrence, build_gold_item_features, build_gold_user_sequences
from .silver import (
    build_silver_events,
    build_silver_interactions,
    build_silver_movies,
    build_silver_ratings,
    build_silver_tmdb,
    stage_scd2,
)

log = logging.getLogger(__name__)
LAYERS = ("bronze", "silver", "gold")
Builder = Callable[[SparkSession, Mapping[str, object]], DataFrame]


@dataclass
class StepResult:
    """What one step did: table, rows written (or merged), seconds, and a short note."""

    step: str
    table: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunResult:
    """All steps of a run, in order."""

    started_at: datetime
    steps: list[StepResult] = field(default_factory=list)

    def rows(self, table: str) -> int:
        return sum(s.rows for s in self.steps if s.table == table)


def _timed(result: RunResult, step: str, table: str, work: Callable[[], tuple[int, str]]) -> None:
    t0 = time.perf_counter()
    rows, note = work()
    result.steps.append(StepResult(step, table, rows, time.perf_counter() - t0, note))
    log.info("%s %s: %d rows in %.1fs %s", step, table, rows, result.steps[-1].seconds, note)


def run_bronze(spark: SparkSession, store: DeltaBackend, config: LakehouseConfig, result: RunResult) -> None:
    """Append each new input file to its bronze table; files already ingested are skipped."""
    for table, files in discover_sources(config).items():

        def ingest(table: str = table, files: list[SourceFile] = files) -> tuple[int, str]:
            todo = plan_ingest(files, store.distinct_values(table, T.CHECKSUM))
            if not todo:
                return 0, f"{len(files)} file(s) already ingested"
            df = BRONZE_BUILDERS[table](spark, {"files": todo, "ingested_at": result.started_at})
            return store.append(table, df), f"{len(todo)} new file(s)"

        _timed(result, "bronze", table, ingest)


def _bronze(spark: SparkSession, store: DeltaBackend, table: str) -> DataFrame:
    if store.exists(table):
        return store.read(spark, table)
    return BRONZE_BUILDERS[table](spark, {"files": [], "ingested_at": datetime.now(UTC)})


def _union(frames: Iterable[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)


def run_silver(spark: SparkSession, store: DeltaBackend, config: LakehouseConfig, result: RunResult) -> None:
    """Contracts, quarantine, the SCD2 movie merge, then events and interactions."""
    at = result.started_at
    bronze = {t: _bronze(spark, store, t) for t in T.BRONZE_TABLES}
    tmdb = split(build_silver_tmdb(spark, bronze), T.SILVER_TMDB, checked_at=at)
    movies = split(
        build_silver_movies(spark, {**bronze, T.SILVER_TMDB: tmdb.valid, "as_of": at}).cache(),
        T.SILVER_MOVIES,
        checked_at=at,
    )
    snapshot = movies.valid.drop(T.SOURCE_FILE, T.CHECKSUM, T.INGESTED_AT, T.LINE)

    def merge() -> tuple[int, str]:
        current = (
            store.read(spark, T.SILVER_MOVIES)
            if store.exists(T.SILVER_MOVIES)
            else snapshot.select(T.MOVIE_KEY, T.ATTR_HASH, F.lit(True).alias(T.IS_CURRENT)).limit(0)
        )
        metrics = store.merge_scd2(
            T.SILVER_MOVIES,
            stage_scd2(snapshot, current, at),
            key=T.MOVIE_KEY,
            hash_column=T.ATTR_HASH,
            valid_from=T.VALID_FROM,
            valid_to=T.VALID_TO,
            is_current=T.IS_CURRENT,
        )
        inserted, updated = metrics.get("num_target_rows_inserted", 0), metrics.get("num_target_rows_updated", 0)
        return inserted + updated, f"{inserted} version(s) opened, {updated} closed"

    _timed(result, "silver", T.SILVER_MOVIES, merge)

    sources = {**bronze, "movies": snapshot, "as_of": at, "events_dataset": config.events_dataset}
    events = split(build_silver_events(spark, sources).cache(), T.SILVER_EVENTS, checked_at=at)
    ratings = split(build_silver_ratings(spark, sources).cache(), T.SILVER_INTERACTIONS, checked_at=at)
    _timed(
        result,
        "silver",
        T.SILVER_EVENTS,
        lambda: (store.overwrite(T.SILVER_EVENTS, events.valid.select(*T.SILVER_EVENTS_COLUMNS)), ""),
    )
    interactions = build_silver_interactions(
        spark, {"ratings": ratings.valid, T.SILVER_EVENTS: store.read(spark, T.SILVER_EVENTS)}
    )
    _timed(
        result,
        "silver",
        T.SILVER_INTERACTIONS,
        lambda: (store.overwrite(T.SILVER_INTERACTIONS, interactions.select(*T.SILVER_INTERACTIONS_COLUMNS)), ""),
    )
    rejected = _union([tmdb.rejected, movies.rejected, events.rejected, ratings.rejected])
    _timed(result, "silver", T.QUARANTINE, lambda: (store.overwrite(T.QUARANTINE, rejected), "rebuilt from bronze"))


def run_gold(spark: SparkSession, store: DeltaBackend, config: LakehouseConfig, result: RunResult) -> None:
    """Sequences, item features and co-occurrence from the silver tables just written."""
    sources = {
        T.SILVER_INTERACTIONS: store.read(spark, T.SILVER_INTERACTIONS),
        T.SILVER_EVENTS: store.read(spark, T.SILVER_EVENTS),
        "movies": store.read(spark, T.SILVER_MOVIES),
    }
    for table, build in (
        (T.GOLD_USER_SEQUENCES, build_gold_user_sequences),
        (T.GOLD_ITEM_FEATURES, build_gold_item_features),
        (T.GOLD_ITEM_COOCCURRENCE, build_gold_item_cooccurrence),
    ):

        def write(table: str = table, build: Builder = build) -> tuple[int, str]:
            return store.overwrite(table, build(spark, sources)), ""

        _timed(result, "gold", table, write)


class PipelineBusy(RuntimeError):
    """Another run holds the lakehouse root; two concurrent runs could append the same file twice."""


@contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``root/_lakehouse.lock`` for the duration of a run."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "_lakehouse.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PipelineBusy(f"{root}: another lakehouse run is in progress") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_pipeline(
    config: LakehouseConfig,
    *,
    spark: SparkSession | None = None,
    layers: Iterable[str] = LAYERS,
    as_of: datetime | None = None,
    store: DeltaBackend | None = None,
) -> RunResult:
    """Run the requested layers in order against ``config.root``; returns per-step rows and timings."""
    from .spark import spark_session

    layers = list(layers)
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}: expected some of {LAYERS}")
    as_of = as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    runners = {"bronze": run_bronze, "silver": run_silver, "gold": run_gold}
    with root_lock(Path(config.root)):
        spark = spark or spark_session()
        store = store or backend_for(config.root, spark)
        result = RunResult(started_at=as_of)
        for layer in layers:
            runners[layer](spark, store, config, result)
            # each layer reads the tables the one before it wrote: what it cached would only hold on to the
            # execution memory the next one sorts in (at 100M events, silver's cache starved gold's windows)
            spark.catalog.clearCache()
    return result
