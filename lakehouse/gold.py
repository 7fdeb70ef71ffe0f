"""Gold jobs: exactly what ml_core training reads (sequences, item features, co-occurrence)."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from . import tables as T
from .sources import frame, integer


def build_gold_user_sequences(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """One row per (dataset, user): item ids, unix times and ratings in chronological order."""
    interactions = frame(sources, T.SILVER_INTERACTIONS)
    rating = F.coalesce(F.col(T.RATING), F.lit(1.0)).alias(T.RATING)
    event = F.struct(F.col(T.TIMESTAMP), F.col(T.ARRIVAL), F.col(T.MOVIE_ID), rating)
    grouped = interactions.groupBy(T.DATASET, T.USER_ID).agg(F.sort_array(F.collect_list(event)).alias("_ev"))
    return grouped.select(
        T.DATASET,
        T.USER_ID,
        F.col(f"_ev.{T.MOVIE_ID}").alias(T.ITEM_IDS),
        F.col(f"_ev.{T.TIMESTAMP}").alias(T.TIMESTAMPS),
        F.transform(F.col(f"_ev.{T.RATING}"), lambda r: r.cast("float")).alias(T.RATINGS),
        F.size("_ev").alias(T.LENGTH),
    )


def build_gold_item_features(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Current movie content joined with popularity, a popularity-based propensity and logged impressions."""
    movies = frame(sources, "movies")
    interactions = frame(sources, T.SILVER_INTERACTIONS)
    events = frame(sources, T.SILVER_EVENTS)
    stats = interactions.groupBy(T.DATASET, T.MOVIE_ID).agg(
        F.count(F.lit(1)).alias(T.N_INTERACTIONS),
        F.countDistinct(T.USER_ID).alias(T.N_USERS),
        F.avg(T.RATING).alias(T.MEAN_RATING),
    )
    per_dataset = Window.partitionBy(T.DATASET)
    rank = Window.partitionBy(T.DATASET).orderBy(F.col(T.N_INTERACTIONS).desc(), T.MOVIE_ID)
    impressions = (
        events.where(F.col(T.KIND) == T.KIND_IMPRESSION)
        .groupBy(T.DATASET, T.MOVIE_ID)
        .agg(F.count(F.lit(1)).alias(T.N_IMPRESSIONS), F.avg(T.PROPENSITY).alias(T.PROPENSITY_LOGGED))
    )
    current = movies.where(F.col(T.IS_CURRENT)).select(*T.GOLD_ITEM_FEATURES_COLUMNS[:12])
    n = F.coalesce(F.col(T.N_INTERACTIONS), F.lit(0))
    return (
        current.join(stats, [T.DATASET, T.MOVIE_ID], "left")
        .join(impressions, [T.DATASET, T.MOVIE_ID], "left")
        .withColumn(T.N_INTERACTIONS, n)
        .withColumn(T.N_USERS, F.coalesce(F.col(T.N_USERS), F.lit(0)))
        .withColumn(T.N_IMPRESSIONS, F.coalesce(F.col(T.N_IMPRESSIONS), F.lit(0)))
        .withColumn(T.POPULARITY_RANK, F.row_number().over(rank))
        .withColumn(T.POPULARITY_SHARE, n / F.greatest(F.sum(n).over(per_dataset), F.lit(1)))
        .withColumn(
            T.PROPENSITY_POP, F.pow(n / F.greatest(F.max(n).over(per_dataset), F.lit(1)), F.lit(T.PROPENSITY_POWER))
        )
        .select(*T.GOLD_ITEM_FEATURES_COLUMNS)
    )


def build_gold_item_cooccurrence(spark: SparkSession, sources: Mapping[str, object]) -> DataFrame:
    """Item pairs seen within COOCCURRENCE_WINDOW consecutive events of a user, with counts and PMI."""
    interactions = frame(sources, T.SILVER_INTERACTIONS)
    window = integer(sources, "window", T.COOCCURRENCE_WINDOW)
    min_count = integer(sources, "min_count", T.COOCCURRENCE_MIN_COUNT)
    seq = Window.partitionBy(T.DATASET, T.USER_ID).orderBy(T.TIMESTAMP, T.ARRIVAL, T.MOVIE_ID)
    nexts = F.array(*[F.lead(T.MOVIE_ID, k).over(seq) for k in range(1, window + 1)])
    pairs = (
        interactions.select(T.DATASET, T.USER_ID, T.MOVIE_ID, nexts.alias("_nexts"))
        .select(T.DATASET, T.USER_ID, T.MOVIE_ID, F.explode("_nexts").alias("_next"))
        .where(F.col("_next").isNotNull() & (F.col("_next") != F.col(T.MOVIE_ID)))
        .select(
            T.DATASET,
            T.USER_ID,
            F.least(T.MOVIE_ID, "_next").alias(T.ITEM_A),
            F.greatest(T.MOVIE_ID, "_next").alias(T.ITEM_B),
        )
    )
    # cached: the pair counts feed the marginals, the totals and the table (the pipeline clears the cache)
    counted = (
        pairs.groupBy(T.DATASET, T.USER_ID, T.ITEM_A, T.ITEM_B)
        .count()
        .groupBy(T.DATASET, T.ITEM_A, T.ITEM_B)
        .agg(F.sum("count").alias(T.COUNT), F.count(F.lit(1)).alias(T.N_USERS_PAIR))
        .cache()
    )
    marginals = (
        counted.select(T.DATASET, F.explode(F.array(T.ITEM_A, T.ITEM_B)).alias("_item"), T.COUNT)
        .groupBy(T.DATASET, "_item")
        .agg(F.sum(T.COUNT).alias("_m"))
    )
    # one row per item: broadcast, so the pairs are joined where they lie instead of shuffled twice
    m_a = F.broadcast(marginals.select(T.DATASET, F.col("_item").alias(T.ITEM_A), F.col("_m").alias("_ma")))
    m_b = F.broadcast(marginals.select(T.DATASET, F.col("_item").alias(T.ITEM_B), F.col("_m").alias("_mb")))
    # an aggregate, not a window over the whole dataset (which would sort every pair in one task)
    totals = counted.groupBy(T.DATASET).agg(F.sum(T.COUNT).alias("_total"))
    return (
        counted.where(F.col(T.COUNT) >= min_count)
        .join(F.broadcast(totals), T.DATASET)
        .join(m_a, [T.DATASET, T.ITEM_A])
        .join(m_b, [T.DATASET, T.ITEM_B])
        .withColumn(T.PMI, F.log(F.col(T.COUNT) * F.col("_total") / (F.col("_ma") * F.col("_mb"))))
        .select(*T.GOLD_ITEM_COOCCURRENCE_COLUMNS)
    )
