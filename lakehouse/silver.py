"""Silver jobs: typed, deduplicated, joined; each returns rows tagged with contract violations.

The pipeline splits every tagged frame with :func:`lakehouse.contracts.split`: clean rows
go to the silver table and the rest to quarantine with their reasons. Nothing is dropped
silently. Movie metadata is a type 2 slowly changing dimension, staged here and merged
by the Delta backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import tables as T
from .contracts import Contract, Rule, bad_cast, is_half_step, missing, raw_struct, tagged
from .sources import frame, instant, text

NO_GENRES = ("unknown", "(no genres listed)")
# TMDB genres/keywords are JSON (tmdb-5000) or Python reprs (the-movies-dataset): pull out the names.
NAME_PATTERN = r"""name['"]: ['"]([^'"]+)"""
TMDB_SOURCE_PRIORITY = (
    "tmdb-5000/tmdb_5000_movies.csv",
    "the-movies-dataset/movies_metadata_small.csv",
    "the-movies-dataset/keywords.csv",
)


def _latest_load(df: DataFrame, *key: str) -> DataFrame:
    """Rows of the most recent ingestion per key: a newer file of a source supersedes the older one.

    An aggregate (one row per key) broadcast back, not a window partitioned by the key: keyed by source, the
    window sorted a whole rating file in one task (25M rows at ml-25m's size). Keys match null-safely, so rows
    with a missing key still reach the contract and its quarantine."""
    names = [f"_latest_key{i}" for i in range(len(key))]
    latest = df.groupBy(*key).agg(F.max(T.INGESTED_AT).alias("_latest"))
    latest = latest.select(*[F.col(k).alias(n) for k, n in zip(key, names, strict=True)], "_latest")
    same = [F.col(k).eqNullSafe(F.col(n)) for k, n in zip(key, names, strict=True)]
    on = reduce(Column.__and__, same, F.col(T.INGESTED_AT) == F.col("_latest"))
    return df.join(F.broadcast(latest), on, "inner").drop(*names, "_latest")


def _long(column: str) -> Column:
    return F.trim(F.col(column)).try_cast("bigint")


def _double(column: str) -> Column:
    return F.trim(F.col(column)).try_cast("double")


def _meta() -> list[str]:
    return [T.SOURCE_FILE, T.CHECKSUM, T.INGESTED_AT, T.LINE]


def _year(title: Column, release_date: Column) -> Column:
    from_date = F.regexp_extract(release_date, r"(\d{4})\s*$", 1)
    from_title = F.regexp_extract(title, r"\((\d{4})\)\s*$", 1)
    year = F.when(F.coalesce(from_date, F.lit("")) != "", from_date).otherwise(from_title)
    return F.when(year != "", year.try_cast("int"))


def _names(col: Column) -> Column:
    return F.when(col.isNotNull(), F.regexp_extract_all(col, F.lit(NAME_PATTERN), 1))


# --- movies -------------------------------------------------------------------------------
def tmdb_contract() -> Contract:
    """Keys, types and ranges of TMDB rows (one row per TMDB id and source file)."""
    return Contract(
        T.SILVER_TMDB,
        [
            Rule("tmdb_id_missing", missing(T.TMDB_ID)),
            Rule("tmdb_id_not_integer", bad_cast(T.TMDB_ID, F.col(T.TMDB_ID))),
            Rule("vote_average_out_of_range", ~F.col(T.VOTE_AVERAGE).between(0, 10)),
            Rule("vote_count_out_of_range", F.col(T.VOTE_COUNT) < 0),
            Rule("runtime_out_of_range", ~F.col(T.RUNTIME).between(0, 1000)),
        ],
        key=(T.TMDB_ID, T.SOURCE),
        order=(F.col(T.LINE),),
    )


def build_silver_tmdb(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Typed TMDB rows from the latest load of each TMDB file, tagged with contract violations."""
    bronze = frame(sources, T.BRONZE_TMDB)
    typed = _latest_load(bronze, T.SOURCE).select(
        raw_struct(T.BRONZE_TMDB_COLUMNS),
        *_meta(),
        F.col(T.SOURCE),
        _long(T.TMDB_ID).alias(T.TMDB_ID),
        F.col(T.OVERVIEW),
        _names(F.col(T.KEYWORDS)).alias(T.KEYWORDS),
        _double(T.RUNTIME).alias(T.RUNTIME),
        _double(T.VOTE_AVERAGE).alias(T.VOTE_AVERAGE),
        _double(T.VOTE_COUNT).try_cast("bigint").alias(T.VOTE_COUNT),
        _double(T.TMDB_POPULARITY).alias(T.TMDB_POPULARITY),
    )
    return tagged(typed, tmdb_contract())


def _tmdb_current(tmdb: DataFrame) -> DataFrame:
    """One row per TMDB id from valid typed rows; each field from the highest-priority source that has it."""
    priority = F.coalesce(
        *[F.when(F.col(T.SOURCE).endswith(s), F.lit(i)) for i, s in enumerate(TMDB_SOURCE_PRIORITY)],
        F.lit(len(TMDB_SOURCE_PRIORITY)),
    )
    fields = (T.OVERVIEW, T.KEYWORDS, T.RUNTIME, T.VOTE_AVERAGE, T.VOTE_COUNT, T.TMDB_POPULARITY)
    best = [F.min_by(F.col(c), F.when(F.col(c).isNotNull(), priority)).alias(c) for c in fields]
    return tmdb.groupBy(T.TMDB_ID).agg(*best)


def _links(links: DataFrame, movies: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(dataset, movie_id) -> tmdb/imdb ids: direct links, else an exact title match to a linked dataset."""
    direct = (
        _latest_load(links, T.DATASET, T.MOVIE_ID)
        .select(
            T.DATASET,
            _long(T.MOVIE_ID).alias(T.MOVIE_ID),
            _long(T.TMDB_ID).alias(T.TMDB_ID),
            F.trim(F.col(T.IMDB_ID)).alias(T.IMDB_ID),
        )
        .dropDuplicates([T.DATASET, T.MOVIE_ID])
    )
    titled = (
        movies.select(T.DATASET, _long(T.MOVIE_ID).alias(T.MOVIE_ID), F.trim(F.col(T.TITLE)).alias(T.TITLE))
        .join(direct, [T.DATASET, T.MOVIE_ID])
        .where(F.col(T.TMDB_ID).isNotNull())
        .groupBy(T.TITLE)
        .agg(F.min_by(F.struct(T.TMDB_ID, T.IMDB_ID), T.MOVIE_ID).alias("_by_title"))
    )
    return direct, titled


def movie_contract(as_of: datetime) -> Contract:
    """Keys, types and ranges of silver_movies."""
    return Contract(
        T.SILVER_MOVIES,
        [
            Rule("movie_id_missing", missing(T.MOVIE_ID)),
            Rule("movie_id_not_integer", bad_cast(T.MOVIE_ID, F.col(T.MOVIE_ID))),
            Rule("title_missing", missing(T.TITLE)),
            Rule("year_out_of_range", ~F.col(T.YEAR).between(1870, as_of.year + 5)),
        ],
        key=(T.DATASET, T.MOVIE_ID),
        order=(F.col(T.SOURCE_FILE),),
    )


def build_silver_movies(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Current movie snapshot: latest MovieLens load per movie joined with links and valid TMDB rows, tagged."""
    bronze, links, tmdb = frame(sources, T.BRONZE_MOVIES), frame(sources, T.BRONZE_LINKS), frame(sources, T.SILVER_TMDB)
    as_of = instant(sources, "as_of")
    movies = _latest_load(bronze, T.DATASET, T.MOVIE_ID)
    direct, by_title = _links(links, movies)
    genres = F.filter(F.split(F.coalesce(F.col(T.GENRES), F.lit("")), r"\|"), lambda g: (g != "") & ~g.isin(*NO_GENRES))
    typed = movies.select(
        raw_struct(T.BRONZE_MOVIES_COLUMNS),
        *_meta(),
        F.col(T.DATASET),
        _long(T.MOVIE_ID).alias(T.MOVIE_ID),
        F.trim(F.col(T.TITLE)).alias(T.TITLE),
        _year(F.col(T.TITLE), F.col(T.RELEASE_DATE)).alias(T.YEAR),
        genres.alias(T.GENRES),
    )
    joined = (
        typed.join(direct, [T.DATASET, T.MOVIE_ID], "left")
        .join(by_title, T.TITLE, "left")
        .withColumn(T.TMDB_ID, F.coalesce(T.TMDB_ID, "_by_title.tmdb_id"))
        .withColumn(T.IMDB_ID, F.coalesce(T.IMDB_ID, "_by_title.imdb_id"))
        .drop("_by_title")
        .join(_tmdb_current(tmdb), T.TMDB_ID, "left")
    )
    attrs = F.sha2(F.to_json(F.struct(*[F.col(c) for c in T.SILVER_MOVIES_ATTRIBUTES])), 256)
    out = joined.select("*", F.concat_ws(":", T.DATASET, T.MOVIE_ID).alias(T.MOVIE_KEY), attrs.alias(T.ATTR_HASH))
    return tagged(out, movie_contract(as_of))


def stage_scd2(snapshot: DataFrame, current: DataFrame, valid_from: datetime) -> DataFrame:
    """The MERGE source: changed keys close their version (merge_key set), new versions insert (merge_key null)."""
    cur = current.where(F.col(T.IS_CURRENT)).select(T.MOVIE_KEY, F.col(T.ATTR_HASH).alias("_old_hash"))
    diff = snapshot.join(cur, T.MOVIE_KEY, "left").where(
        F.col("_old_hash").isNull() | (F.col("_old_hash") != F.col(T.ATTR_HASH))
    )
    versions = diff.select(
        *[F.col(c) for c in T.SILVER_MOVIES_COLUMNS[:-3]],
        F.lit(valid_from).cast("timestamp").alias(T.VALID_FROM),
        F.lit(None).cast("timestamp").alias(T.VALID_TO),
        F.lit(True).alias(T.IS_CURRENT),
        F.col("_old_hash").isNotNull().alias("_changed"),
    )
    closes = versions.where("_changed").withColumn("merge_key", F.col(T.MOVIE_KEY))
    inserts = versions.withColumn("merge_key", F.lit(None).cast("string"))
    return closes.unionByName(inserts).drop("_changed")


# --- events ---------------------------------------------------------------------------------
def _known_movies(movies: DataFrame) -> DataFrame:
    """(dataset, movie_id) of the snapshot, broadcast: the catalogue is small, so the event side is not shuffled."""
    known = movies.select(T.DATASET, T.MOVIE_ID, F.lit(True).alias("_known")).dropDuplicates([T.DATASET, T.MOVIE_ID])
    return F.broadcast(known)


def event_contract(as_of: datetime) -> Contract:
    """Types, allowed kinds, value and propensity ranges, key and movie reference of silver_events."""
    kind, value, propensity = F.col(T.KIND), F.col(T.VALUE), F.col(T.PROPENSITY)
    return Contract(
        T.SILVER_EVENTS,
        [
            Rule("event_id_missing", missing(T.EVENT_ID)),
            Rule("user_id_missing", missing(T.USER_ID)),
            Rule("user_id_not_integer", bad_cast(T.USER_ID, F.col(T.USER_ID))),
            Rule("movie_id_missing", missing(T.MOVIE_ID)),
            Rule("movie_id_not_integer", bad_cast(T.MOVIE_ID, F.col(T.MOVIE_ID))),
            Rule("kind_not_allowed", ~F.coalesce(kind.isin(*T.EVENT_KINDS), F.lit(False))),
            Rule("created_at_missing", missing(T.CREATED_AT)),
            Rule("created_at_not_timestamp", bad_cast(T.CREATED_AT, F.col(T.EVENT_TIME))),
            Rule("created_at_in_future", F.col(T.EVENT_TIME) > F.lit(as_of).cast("timestamp")),
            Rule("value_not_number", bad_cast(T.VALUE, value)),
            Rule("rating_value_out_of_range", (kind == T.KIND_RATING) & ~F.coalesce(is_half_step(value), F.lit(False))),
            Rule("propensity_not_number", bad_cast(T.PROPENSITY, propensity)),
            Rule("propensity_out_of_range", (propensity <= 0) | (propensity > 1)),
            Rule("impression_without_propensity", (kind == T.KIND_IMPRESSION) & propensity.isNull()),
            Rule("unknown_movie", F.col(T.MOVIE_ID).isNotNull() & F.col("_known").isNull()),
        ],
        key=(T.EVENT_ID,),
        order=(F.col(T.INGESTED_AT), F.col(T.SOURCE_FILE)),
    )


def build_silver_events(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Typed site events (all kinds, impressions included), deduplicated by event_id, tagged."""
    bronze, movies = frame(sources, T.BRONZE_EVENTS), frame(sources, "movies")
    dataset, as_of = text(sources, "events_dataset"), instant(sources, "as_of")
    typed = bronze.select(
        raw_struct(T.EVENT_EXPORT_COLUMNS),
        *_meta(),
        F.lit(dataset).alias(T.DATASET),
        F.trim(F.col(T.EVENT_ID)).alias(T.EVENT_ID),
        _long(T.USER_ID).alias(T.USER_ID),
        _long(T.MOVIE_ID).alias(T.MOVIE_ID),
        F.lower(F.trim(F.col(T.KIND))).alias(T.KIND),
        _double(T.VALUE).alias(T.VALUE),
        F.trim(F.col(T.CREATED_AT)).try_cast("timestamp").alias(T.EVENT_TIME),
        _double(T.PROPENSITY).alias(T.PROPENSITY),
    )
    typed = typed.join(_known_movies(movies), [T.DATASET, T.MOVIE_ID], "left")
    return tagged(typed, event_contract(as_of)).drop("_known")


# --- interactions -------------------------------------------------------------------------------
def rating_contract(as_of: datetime) -> Contract:
    """Types, rating grid, time range, key and movie reference of MovieLens ratings."""
    return Contract(
        T.SILVER_INTERACTIONS,
        [
            Rule("user_id_missing", missing(T.USER_ID)),
            Rule("user_id_not_integer", bad_cast(T.USER_ID, F.col(T.USER_ID))),
            Rule("movie_id_missing", missing(T.MOVIE_ID)),
            Rule("movie_id_not_integer", bad_cast(T.MOVIE_ID, F.col(T.MOVIE_ID))),
            Rule("rating_missing", missing(T.RATING)),
            Rule("rating_out_of_range", ~is_half_step(F.col(T.RATING))),
            Rule("timestamp_missing", missing(T.TIMESTAMP)),
            Rule("timestamp_not_integer", bad_cast(T.TIMESTAMP, F.col(T.TIMESTAMP))),
            Rule("timestamp_out_of_range", ~F.col(T.TIMESTAMP).between(0, int(as_of.timestamp()))),
            Rule("unknown_movie", F.col(T.MOVIE_ID).isNotNull() & F.col("_known").isNull()),
        ],
        key=(T.DATASET, T.USER_ID, T.MOVIE_ID),
        order=(F.col(T.TIMESTAMP).desc(), F.col(T.SOURCE_FILE)),
    )


def build_silver_ratings(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Typed MovieLens ratings from the latest load of each rating file, one per (user, movie), tagged."""
    bronze, movies, as_of = frame(sources, T.BRONZE_RATINGS), frame(sources, "movies"), instant(sources, "as_of")
    typed = _latest_load(bronze, T.SOURCE).select(
        raw_struct(T.BRONZE_RATINGS_COLUMNS),
        *_meta(),
        F.col(T.DATASET),
        _long(T.USER_ID).alias(T.USER_ID),
        _long(T.MOVIE_ID).alias(T.MOVIE_ID),
        _double(T.RATING).alias(T.RATING),
        _long(T.TIMESTAMP).alias(T.TIMESTAMP),
    )
    typed = typed.join(_known_movies(movies), [T.DATASET, T.MOVIE_ID], "left")
    return tagged(typed, rating_contract(as_of)).drop("_known")


def build_silver_interactions(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Valid MovieLens ratings plus positive site events (users offset by EVENT_USER_OFFSET), one schema.

    Arrival breaks ties between equal timestamps: file position for MovieLens, microseconds for events.
    """
    ratings, events = frame(sources, "ratings"), frame(sources, T.SILVER_EVENTS)
    ml = ratings.select(
        T.DATASET,
        T.USER_ID,
        T.MOVIE_ID,
        F.col(T.RATING).cast("float").alias(T.RATING),
        T.TIMESTAMP,
        F.col(T.LINE).alias(T.ARRIVAL),
        F.timestamp_seconds(T.TIMESTAMP).alias(T.EVENT_TIME),
        F.lit(T.ORIGIN_MOVIELENS).alias(T.ORIGIN),
        F.lit(T.KIND_RATING).alias(T.KIND),
        F.lit(None).cast("string").alias(T.EVENT_ID),
    )
    site = events.where(F.col(T.KIND).isin(*T.POSITIVE_EVENT_KINDS)).select(
        T.DATASET,
        (F.col(T.USER_ID) + F.lit(T.EVENT_USER_OFFSET)).alias(T.USER_ID),
        T.MOVIE_ID,
        F.when(F.col(T.KIND) == T.KIND_RATING, F.col(T.VALUE)).cast("float").alias(T.RATING),
        F.unix_timestamp(T.EVENT_TIME).alias(T.TIMESTAMP),
        F.unix_micros(T.EVENT_TIME).alias(T.ARRIVAL),
        T.EVENT_TIME,
        F.lit(T.ORIGIN_EVENTS).alias(T.ORIGIN),
        T.KIND,
        T.EVENT_ID,
    )
    return ml.unionByName(site)
