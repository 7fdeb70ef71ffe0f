"""Bronze jobs: raw files appended as they arrived, all business columns as strings.

Each builder reads the files it is given and adds ingestion time, source and the
file's checksum; :func:`plan_ingest` drops files whose checksum the table already holds,
and rows plus checksum land in one Delta commit, so re-ingesting a file is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import cast

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import tables as T
from .sources import instant


@dataclass(frozen=True)
class SourceFile:
    """One input file: its logical source, dataset (id space), layout and content checksum."""

    source: str  # e.g. "ml-100k/u.data"
    dataset: str  # "ml-100k", "ml-latest-small", "tmdb", "events"
    layout: str  # a key of the reader tables below
    path: Path
    checksum: str


def file_checksum(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_file(source: str, dataset: str, layout: str, path: Path | str) -> SourceFile:
    path = Path(path).resolve()
    return SourceFile(source, dataset, layout, path, file_checksum(path))


def plan_ingest(files: Iterable[SourceFile], already: set[str]) -> list[SourceFile]:
    """Files whose checksum is not yet in the table (and each checksum once)."""
    seen, todo = set(already), []
    for f in files:
        if f.checksum not in seen:
            seen.add(f.checksum)
            todo.append(f)
    return todo


def _with_meta(df: DataFrame, f: SourceFile, ingested_at: datetime) -> DataFrame:
    """Add ingestion time, source, file, checksum and line order (ids grow with file position)."""
    return (
        df.withColumn(T.LINE, F.monotonically_increasing_id())
        .withColumn(T.INGESTED_AT, F.lit(ingested_at).cast("timestamp"))
        .withColumn(T.SOURCE, F.lit(f.source))
        .withColumn(T.SOURCE_FILE, F.lit(str(f.path)))
        .withColumn(T.CHECKSUM, F.lit(f.checksum))
    )


def _strings(df: DataFrame, columns: Sequence[str]) -> DataFrame:
    return df.select(*[F.col(c).cast("string").alias(c) for c in columns])


def _csv(spark: SparkSession, path: Path, schema: str, **options: str) -> DataFrame:
    return spark.read.options(**options).csv(str(path), schema=schema)


def _union(frames: list[DataFrame], empty: DataFrame) -> DataFrame:
    return reduce(DataFrame.unionByName, frames) if frames else empty


def _ingest(sources: Mapping[str, object]) -> tuple[datetime, Sequence[SourceFile]]:
    """The run's ingestion time and the files to read, as the pipeline passes them."""
    return instant(sources, "ingested_at"), cast("Sequence[SourceFile]", sources["files"])


def _empty(spark: SparkSession, columns: Sequence[str]) -> DataFrame:
    schema = ", ".join(f"`{c}` string" for c in columns)
    return _with_meta(spark.createDataFrame([], schema), SourceFile("", "", "", Path("."), ""), datetime.now())


# --- ratings ------------------------------------------------------------------------
def _ratings_ml100k(spark: SparkSession, f: SourceFile) -> DataFrame:
    df = _csv(spark, f.path, "user_id string, movie_id string, rating string, timestamp string", sep="\t")
    return df.withColumn(T.DATASET, F.lit(f.dataset))


def _ratings_csv(spark: SparkSession, f: SourceFile) -> DataFrame:
    df = _csv(spark, f.path, "userId string, movieId string, rating string, timestamp string", header="true")
    return df.select(
        F.lit(f.dataset).alias(T.DATASET),
        F.col("userId").alias(T.USER_ID),
        F.col("movieId").alias(T.MOVIE_ID),
        T.RATING,
        T.TIMESTAMP,
    )


RATING_READERS = {"ml-100k": _ratings_ml100k, "ml-latest": _ratings_csv}


def build_bronze_ratings(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """MovieLens rating files (u.data or ratings.csv) as raw string rows plus ingestion metadata."""
    at, files = _ingest(sources)
    frames = [_with_meta(_strings(RATING_READERS[f.layout](spark, f), T.BRONZE_RATINGS_COLUMNS), f, at) for f in files]
    return _union(frames, _empty(spark, T.BRONZE_RATINGS_COLUMNS))


# --- movies ---------------------------------------------------------------------------
def _movies_ml100k(spark: SparkSession, f: SourceFile) -> DataFrame:
    genre_file = f.path.with_name("u.genre")
    genres = [ln.split("|")[0] for ln in genre_file.read_text("latin-1").splitlines() if ln.strip()]
    flags = [f"g{i}" for i in range(len(genres))]
    schema = ", ".join(
        [
            "movie_id string, title string, release_date string, video_date string, url string",
            *[f"{g} string" for g in flags],
        ]
    )
    df = _csv(spark, f.path, schema, sep="|", encoding="ISO-8859-1", quote="")
    names: list[Column] = [F.when(F.col(g) == "1", F.lit(name)) for g, name in zip(flags, genres, strict=True)]
    return df.select(
        F.lit(f.dataset).alias(T.DATASET), T.MOVIE_ID, T.TITLE, F.concat_ws("|", *names).alias(T.GENRES), T.RELEASE_DATE
    )


def _movies_csv(spark: SparkSession, f: SourceFile) -> DataFrame:
    df = _csv(spark, f.path, "movieId string, title string, genres string", header="true", escape='"')
    return df.select(
        F.lit(f.dataset).alias(T.DATASET),
        F.col("movieId").alias(T.MOVIE_ID),
        T.TITLE,
        T.GENRES,
        F.lit(None).cast("string").alias(T.RELEASE_DATE),
    )


MOVIE_READERS = {"ml-100k": _movies_ml100k, "ml-latest": _movies_csv}


def build_bronze_movies(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """MovieLens movie files (u.item or movies.csv): id, title, genres as "A|B", release date."""
    at, files = _ingest(sources)
    frames = [_with_meta(_strings(MOVIE_READERS[f.layout](spark, f), T.BRONZE_MOVIES_COLUMNS), f, at) for f in files]
    return _union(frames, _empty(spark, T.BRONZE_MOVIES_COLUMNS))


def build_bronze_links(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """MovieLens links.csv: movie id to IMDb and TMDB ids."""
    at, files = _ingest(sources)
    frames = []
    for f in files:
        df = _csv(spark, f.path, "movieId string, imdbId string, tmdbId string", header="true")
        df = df.select(
            F.lit(f.dataset).alias(T.DATASET),
            F.col("movieId").alias(T.MOVIE_ID),
            F.col("imdbId").alias(T.IMDB_ID),
            F.col("tmdbId").alias(T.TMDB_ID),
        )
        frames.append(_with_meta(_strings(df, T.BRONZE_LINKS_COLUMNS), f, at))
    return _union(frames, _empty(spark, T.BRONZE_LINKS_COLUMNS))


# --- TMDB -----------------------------------------------------------------------------
def build_bronze_tmdb(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """TMDB CSVs keyed by TMDB id (tmdb_5000_movies, movies_metadata_small, keywords); absent columns are null."""
    at, files = _ingest(sources)
    frames = []
    for f in files:
        df = spark.read.options(header="true", multiLine="true", escape='"').csv(str(f.path))
        names = {T.TMDB_ID: "id", T.TMDB_POPULARITY: "popularity"}
        df = df.select(
            *[
                (F.col(names.get(c, c)) if names.get(c, c) in df.columns else F.lit(None)).alias(c)
                for c in T.BRONZE_TMDB_COLUMNS
            ]
        )
        frames.append(_with_meta(_strings(df, T.BRONZE_TMDB_COLUMNS), f, at))
    return _union(frames, _empty(spark, T.BRONZE_TMDB_COLUMNS))


# --- exported event log -----------------------------------------------------------------
def build_bronze_events(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Event exports from the site (JSON lines or parquet, schema ``tables.EVENT_EXPORT_SCHEMA``)."""
    at, files = _ingest(sources)
    as_strings = ", ".join(f"`{c}` string" for c in T.EVENT_EXPORT_COLUMNS)
    frames = []
    for f in files:
        if f.layout == "parquet":
            df = spark.read.parquet(str(f.path))
        else:
            df = spark.read.schema(as_strings).option("mode", "PERMISSIVE").json(str(f.path))
        for c in T.EVENT_EXPORT_COLUMNS:
            if c not in df.columns:
                df = df.withColumn(c, F.lit(None).cast("string"))
        frames.append(_with_meta(_strings(df, T.EVENT_EXPORT_COLUMNS), f, at))
    return _union(frames, _empty(spark, T.EVENT_EXPORT_COLUMNS))


BRONZE_BUILDERS = {
    T.BRONZE_RATINGS: build_bronze_ratings,
    T.BRONZE_MOVIES: build_bronze_movies,
    T.BRONZE_LINKS: build_bronze_links,
    T.BRONZE_TMDB: build_bronze_tmdb,
    T.BRONZE_EVENTS: build_bronze_events,
}
