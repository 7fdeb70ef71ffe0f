"""Names of every lakehouse table and column, as plain constants.

This module is imported by ``ml_core`` (to read the gold tables), so it must stay
free of Spark, Delta and Django imports: strings and tuples only.
"""

from __future__ import annotations

# --- metadata columns added at ingestion -----------------------------------------
INGESTED_AT = "_ingested_at"  # tz-aware UTC timestamp of the bronze append
SOURCE = "_source"  # logical source, e.g. "ml-100k/u.data" or "events"
SOURCE_FILE = "_source_file"  # absolute path of the ingested file
CHECKSUM = "_checksum"  # SHA-256 of the file's bytes; re-ingesting it is a no-op
LINE = "_line"  # increasing with the row's position in its file (not contiguous)
META_COLUMNS = (INGESTED_AT, SOURCE, SOURCE_FILE, CHECKSUM, LINE)

# --- shared business columns ------------------------------------------------------
DATASET = "dataset"  # "ml-100k", "ml-latest-small", ...: the id space of user/movie ids
USER_ID = "user_id"
MOVIE_ID = "movie_id"
TMDB_ID = "tmdb_id"
IMDB_ID = "imdb_id"
RATING = "rating"
TIMESTAMP = "timestamp"  # unix seconds (int64)
EVENT_TIME = "event_time"  # tz-aware UTC timestamp
TITLE = "title"
GENRES = "genres"
YEAR = "year"
ARRIVAL = "arrival"  # order of arrival within a source; breaks timestamp ties as the file did
ORIGIN = "origin"  # where an interaction came from: ORIGIN_MOVIELENS or ORIGIN_EVENTS
ORIGIN_MOVIELENS = "movielens"
ORIGIN_EVENTS = "events"

# --- bronze: raw rows as they arrived (all business columns are strings) ----------
BRONZE_RATINGS = "bronze_ratings"
BRONZE_RATINGS_COLUMNS = (DATASET, USER_ID, MOVIE_ID, RATING, TIMESTAMP)
BRONZE_MOVIES = "bronze_movies"
RELEASE_DATE = "release_date"
BRONZE_MOVIES_COLUMNS = (DATASET, MOVIE_ID, TITLE, GENRES, RELEASE_DATE)  # genres: "A|B|C"
BRONZE_LINKS = "bronze_links"
BRONZE_LINKS_COLUMNS = (DATASET, MOVIE_ID, IMDB_ID, TMDB_ID)
BRONZE_TMDB = "bronze_tmdb"
OVERVIEW = "overview"
KEYWORDS = "keywords"
RUNTIME = "runtime"
VOTE_AVERAGE = "vote_average"
VOTE_COUNT = "vote_count"
TMDB_POPULARITY = "tmdb_popularity"
BRONZE_TMDB_COLUMNS = (
    TMDB_ID,
    TITLE,
    OVERVIEW,
    GENRES,
    KEYWORDS,
    RELEASE_DATE,
    RUNTIME,
    VOTE_AVERAGE,
    VOTE_COUNT,
    TMDB_POPULARITY,
)
BRONZE_EVENTS = "bronze_events"

# --- the event log exported by the Django side (JSON lines or parquet) ------------
EVENT_ID = "event_id"
KIND = "kind"
VALUE = "value"
CREATED_AT = "created_at"
PROPENSITY = "propensity"
# (column, Spark SQL type) in file order; created_at is ISO-8601 with an offset (UTC).
EVENT_EXPORT_SCHEMA = (
    (EVENT_ID, "string"),
    (USER_ID, "bigint"),
    (MOVIE_ID, "bigint"),
    (KIND, "string"),
    (VALUE, "double"),
    (CREATED_AT, "timestamp"),
    (PROPENSITY, "double"),
)
EVENT_EXPORT_COLUMNS = tuple(name for name, _ in EVENT_EXPORT_SCHEMA)
KIND_IMPRESSION = "impression"
KIND_CLICK = "click"
KIND_RATING = "rating"
KIND_WATCH = "watch"
KIND_WATCHLIST = "watchlist"
EVENT_KINDS = (KIND_IMPRESSION, KIND_CLICK, KIND_RATING, KIND_WATCH, KIND_WATCHLIST)
POSITIVE_EVENT_KINDS = (KIND_CLICK, KIND_RATING, KIND_WATCH, KIND_WATCHLIST)  # become training interactions
# Site users get this offset in the training id space so they never collide with MovieLens users.
EVENT_USER_OFFSET = 1_000_000_000

# --- silver: typed, deduplicated, joined ------------------------------------------
SILVER_INTERACTIONS = "silver_interactions"
SILVER_INTERACTIONS_COLUMNS = (
    DATASET,
    USER_ID,
    MOVIE_ID,
    RATING,
    TIMESTAMP,
    ARRIVAL,
    EVENT_TIME,
    ORIGIN,
    KIND,
    EVENT_ID,
)
SILVER_EVENTS = "silver_events"
SILVER_EVENTS_COLUMNS = (DATASET, EVENT_ID, USER_ID, MOVIE_ID, KIND, VALUE, EVENT_TIME, PROPENSITY)
SILVER_TMDB = "silver_tmdb"  # typed TMDB rows under contract; folded into silver_movies, not stored on its own
SILVER_MOVIES = "silver_movies"  # slowly changing dimension, type 2
MOVIE_KEY = "movie_key"  # "<dataset>:<movie_id>", the SCD2 business key
ATTR_HASH = "attr_hash"  # SHA-256 of the tracked attributes; a change opens a new version
VALID_FROM = "valid_from"
VALID_TO = "valid_to"  # null while current
IS_CURRENT = "is_current"
SILVER_MOVIES_ATTRIBUTES = (
    TITLE,
    YEAR,
    GENRES,
    TMDB_ID,
    IMDB_ID,
    OVERVIEW,
    KEYWORDS,
    RUNTIME,
    VOTE_AVERAGE,
    VOTE_COUNT,
    TMDB_POPULARITY,
)
SILVER_MOVIES_COLUMNS = (
    MOVIE_KEY,
    DATASET,
    MOVIE_ID,
    *SILVER_MOVIES_ATTRIBUTES,
    ATTR_HASH,
    VALID_FROM,
    VALID_TO,
    IS_CURRENT,
)

# --- quarantine: rows that broke a data contract, with the reason -----------------
QUARANTINE = "quarantine"
TABLE = "table"  # the silver table whose contract was broken
REASON = "reason"  # "; "-joined rule names, e.g. "rating_out_of_range; unknown_movie"
PAYLOAD = "payload"  # the offending bronze row as JSON
QUARANTINED_AT = "quarantined_at"
QUARANTINE_COLUMNS = (TABLE, REASON, PAYLOAD, SOURCE_FILE, CHECKSUM, QUARANTINED_AT)

# --- gold: exactly what ml_core training reads ------------------------------------
GOLD_USER_SEQUENCES = "gold_user_sequences"
ITEM_IDS = "item_ids"  # array<bigint>, chronological (ties in arrival order)
TIMESTAMPS = "timestamps"  # array<bigint>, unix seconds, aligned with item_ids
RATINGS = "ratings"  # array<float>, explicit value where known else 1.0
LENGTH = "length"
GOLD_USER_SEQUENCES_COLUMNS = (DATASET, USER_ID, ITEM_IDS, TIMESTAMPS, RATINGS, LENGTH)
GOLD_ITEM_FEATURES = "gold_item_features"
N_INTERACTIONS = "n_interactions"
N_USERS = "n_users"
MEAN_RATING = "mean_rating"
POPULARITY_RANK = "popularity_rank"  # 1 = most interacted-with item of its dataset
POPULARITY_SHARE = "popularity_share"  # n_interactions / all interactions of the dataset
PROPENSITY_POP = "propensity_pop"  # popularity-based exposure estimate, (n_i / n_max) ** PROPENSITY_POWER
PROPENSITY_POWER = 0.5  # Yang et al. 2018 style power-law exposure model
N_IMPRESSIONS = "n_impressions"  # logged impressions from the site
PROPENSITY_LOGGED = "propensity_logged"  # mean logged serving propensity of those impressions
GOLD_ITEM_FEATURES_COLUMNS = (
    DATASET,
    MOVIE_ID,
    TITLE,
    YEAR,
    GENRES,
    TMDB_ID,
    OVERVIEW,
    KEYWORDS,
    RUNTIME,
    VOTE_AVERAGE,
    VOTE_COUNT,
    TMDB_POPULARITY,
    N_INTERACTIONS,
    N_USERS,
    MEAN_RATING,
    POPULARITY_RANK,
    POPULARITY_SHARE,
    PROPENSITY_POP,
    N_IMPRESSIONS,
    PROPENSITY_LOGGED,
)
GOLD_ITEM_COOCCURRENCE = "gold_item_cooccurrence"
ITEM_A = "item_a"  # movie_id, always < item_b
ITEM_B = "item_b"
COUNT = "count"  # times the pair appeared within COOCCURRENCE_WINDOW events of one user's sequence
N_USERS_PAIR = "n_users"  # distinct users with the pair inside the window
PMI = "pmi"  # log(count * total_pairs / (pairs_with_a * pairs_with_b))
GOLD_ITEM_COOCCURRENCE_COLUMNS = (DATASET, ITEM_A, ITEM_B, COUNT, N_USERS_PAIR, PMI)
COOCCURRENCE_WINDOW = 5
COOCCURRENCE_MIN_COUNT = 2

BRONZE_TABLES = (BRONZE_RATINGS, BRONZE_MOVIES, BRONZE_LINKS, BRONZE_TMDB, BRONZE_EVENTS)
SILVER_TABLES = (SILVER_EVENTS, SILVER_INTERACTIONS, SILVER_MOVIES, QUARANTINE)
GOLD_TABLES = (GOLD_USER_SEQUENCES, GOLD_ITEM_FEATURES, GOLD_ITEM_COOCCURRENCE)
