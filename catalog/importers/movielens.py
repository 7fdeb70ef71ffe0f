"""Write a MovieLens release into the catalog: idempotent, transactional, batched."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, UNUSABLE_PASSWORD_SUFFIX_LENGTH
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from ..history import history_epoch_bump
from ..models import Genre, Movie, Rating
from ..services import movie_rating_stats_refresh, movie_search_text_refresh
from ..services.bulk import analyze, bulk_update_fast, insert_objects, insert_rows
from .layouts import MovieLensData, MovieRow, opened, read_release
from .progress import progress_bar

logger = logging.getLogger(__name__)
BATCH_SIZE = 5000
MOVIE_FIELDS = ["title", "year", "imdb_id", "tmdb_id", "ml100k_id"]


@dataclass
class ImportReport:
    """What one import changed."""

    dataset: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, value: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + value

    @property
    def changed(self) -> int:
        return sum(v for k, v in self.counts.items() if k.endswith(("created", "updated", "deleted")))

    def __str__(self) -> str:
        return f"{self.dataset}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items()))


def default_reference() -> Path:
    """The embedded ml-latest-small, used to map ml-100k titles into the shared MovieLens id space."""
    return Path(settings.BASE_DIR) / "data" / "ml-latest-small"


def import_movielens(path: Path, *, dataset: str | None = None, reference: Path | None = None,
                     progress: bool = True, batch_size: int = BATCH_SIZE) -> ImportReport:
    """Read the release at `path` (folder or zip) and write it in one transaction."""
    with opened(Path(path)) as folder:
        data = read_release(folder, dataset=dataset, reference=reference or default_reference())
    logger.info("read %s (%s): %d movies, %d ratings", data.dataset, data.layout, len(data.movies), len(data.ratings))
    report = ImportReport(data.dataset)
    with transaction.atomic():
        genre_ids = _genres(data.movies.values(), report)
        touched = _movies(data, report, batch_size)
        _movie_genres(data, touched, genre_ids, report, batch_size)
        _tags(data, report, batch_size)
        user_ids = _users(data, report, batch_size, progress)
        _ratings(data, user_ids, report, batch_size, progress)
        analyze(Rating)  # the big one; autovacuum analyses the small tables soon enough
        history_epoch_bump()  # bulk writes send no signals: every cached rating history is stale
        report.add("movie stats updated", movie_rating_stats_refresh())
        report.add("search text updated", movie_search_text_refresh())
    logger.info("imported %s", report)
    return report


def _genres(movies: Iterable[MovieRow], report: ImportReport) -> dict[str, int]:
    names = sorted({g for m in movies for g in m.genres})
    existing = set(Genre.objects.filter(name__in=names).values_list("name", flat=True))
    new = [Genre(name=n, slug=slugify(n)) for n in names if n not in existing]
    Genre.objects.bulk_create(new)
    report.add("genres created", len(new))
    return dict(Genre.objects.values_list("name", "id"))


def _movies(data: MovieLensData, report: ImportReport, batch_size: int) -> set[int]:
    """Create new movies and update changed ones; returns the ids whose genres this release decides."""
    existing = Movie.objects.only("id", *MOVIE_FIELDS).in_bulk(list(data.movies))
    create, update, owned = [], [], set()
    for row in data.movies.values():
        movie = existing.get(row.id)
        if movie is None:
            create.append(Movie(id=row.id, title=row.title, year=row.year, imdb_id=row.imdb_id,
                                tmdb_id=row.tmdb_id, ml100k_id=row.ml100k_id))
            owned.add(row.id)
            continue
        wanted = ({"ml100k_id": row.ml100k_id} if not data.owns_movies else
                  {"title": row.title, "year": row.year, "imdb_id": row.imdb_id, "tmdb_id": row.tmdb_id})
        if data.owns_movies:
            owned.add(row.id)
            if not row.imdb_id and not row.tmdb_id:  # a release without links.csv keeps the ids it has
                wanted.pop("imdb_id"), wanted.pop("tmdb_id")
        if any(getattr(movie, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(movie, k, v)
            update.append(movie)
    insert_objects(create, batch_size=batch_size)
    now = timezone.now()
    for movie in update:
        movie.updated_at = now
    bulk_update_fast(update, [*MOVIE_FIELDS, "updated_at"], batch_size=batch_size)
    report.add("movies created", len(create))
    report.add("movies updated", len(update))
    return owned


def _movie_genres(data: MovieLensData, owned: set[int], genre_ids: dict[str, int], report: ImportReport,
                  batch_size: int) -> None:
    through = Movie.genres.through
    wanted = {(m, genre_ids[g]) for m in owned for g in data.movies[m].genres}
    have = set(through.objects.values_list("movie_id", "genre_id"))
    have_owned = {pair for pair in have if pair[0] in owned}
    new = sorted(wanted - have)
    stale = have_owned - wanted
    insert_rows(through, ["movie", "genre"], new, batch_size=batch_size)
    for movie_id, genre_id in stale:
        through.objects.filter(movie_id=movie_id, genre_id=genre_id).delete()
    report.add("movie genres created", len(new))
    report.add("movie genres deleted", len(stale))


def _tags(data: MovieLensData, report: ImportReport, batch_size: int) -> None:
    if not data.tags:
        return
    movies = Movie.objects.only("id", "tags").in_bulk(list(data.tags))
    changed = [m for m in movies.values() if m.tags != data.tags[m.id]]
    now = timezone.now()
    for movie in changed:
        movie.tags, movie.updated_at = data.tags[movie.id], now
    bulk_update_fast(changed, ["tags", "updated_at"], batch_size=batch_size)
    report.add("movie tags updated", len(changed))


def username_for(dataset: str, source_user_id: int) -> str:
    """'ml-latest-small-1', 'ml-100k-1': the Django username of a MovieLens user."""
    prefix = dataset if dataset.startswith("ml-") else f"ml-{dataset}"
    return f"{prefix}-{source_user_id}"


def _users(data: MovieLensData, report: ImportReport, batch_size: int, progress: bool) -> dict[int, int]:
    """MovieLens user id -> Django user id, creating inactive users with unusable passwords."""
    user_model = get_user_model()
    source_ids = np.unique(data.ratings["user"].to_numpy()).tolist()
    names = {username_for(data.dataset, u): u for u in source_ids}
    prefix = username_for(data.dataset, 0)[:-1]
    existing = {name: pk for name, pk in user_model.objects.filter(username__startswith=prefix)
                .values_list("username", "id") if name in names}
    new = [n for n in names if n not in existing]
    with progress_bar(len(new), f"{data.dataset} users", progress) as bar:
        _create_users(user_model, new, batch_size, bar.update)
    report.add("users created", len(new))
    if new:
        existing = {name: pk for name, pk in user_model.objects.filter(username__startswith=prefix)
                    .values_list("username", "id") if name in names}
    return {names[n]: pk for n, pk in existing.items()}


def unusable_password() -> str:
    """What ``make_password(None)`` stores (the unusable prefix and 40 random characters), at a tenth of its cost."""
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_hex(UNUSABLE_PASSWORD_SUFFIX_LENGTH // 2)


def _create_users(user_model: Any, usernames: list[str], batch_size: int, progress: Any) -> None:
    """Inactive members with unusable passwords. Rows of plain values (COPY on PostgreSQL): at 160k members
    the ORM's per-object path was a large part of a 25M-rating import. Like bulk_create, no signals are sent."""
    fields = [f for f in user_model._meta.concrete_fields if not f.primary_key]
    fixed = {f.name: f.get_default() for f in fields}
    fixed["is_active"] = False
    name_field, names = user_model.USERNAME_FIELD, [f.name for f in fields]
    rows = ([unusable_password() if n == "password" else username if n == name_field else fixed[n] for n in names]
            for username in usernames)
    insert_rows(user_model, names, rows, batch_size=batch_size, progress=progress)


def _ratings(data: MovieLensData, user_ids: dict[int, int], report: ImportReport, batch_size: int,
             progress: bool) -> None:
    frame = data.ratings.sort_values("ts", kind="stable").drop_duplicates(["user", "movie"], keep="last")
    if connection.vendor == "postgresql":
        _ratings_copy(data.dataset, frame, user_ids, report, progress)
        return
    existing = {(u, m): (v, int(t.timestamp())) for u, m, v, t in
                Rating.objects.filter(source=data.dataset).order_by().values_list(
                    "user_id", "movie_id", "value", "rated_at").iterator(chunk_size=50_000)}
    create, update = [], []
    rows = Rating.objects.filter(source=data.dataset).order_by()
    users = frame["user"].map(user_ids).to_numpy(dtype=np.int64)
    for user, movie, value, ts in zip(users.tolist(), frame["movie"].tolist(), frame["value"].tolist(),
                                      frame["ts"].tolist(), strict=True):
        old = existing.get((user, movie))
        if old is None:
            create.append((user, movie, value, dt.datetime.fromtimestamp(ts, tz=dt.UTC), data.dataset))
        elif old != (value, ts):
            update.append((user, movie, value, ts))
    with progress_bar(len(create) + len(update), f"{data.dataset} ratings", progress) as bar:
        insert_rows(Rating, ["user", "movie", "value", "rated_at", "source"], create, batch_size=batch_size,
                    progress=bar.update)
        for user, movie, value, ts in update:
            rows.filter(user_id=user, movie_id=movie).update(value=value,
                                                             rated_at=dt.datetime.fromtimestamp(ts, tz=dt.UTC))
            bar.update(1)
    report.add("ratings created", len(create))
    report.add("ratings updated", len(update))
    report.add("ratings unchanged", len(frame) - len(create) - len(update))


COPY_CHUNK = 1_000_000  # rows per COPY write (a CSV chunk made by pyarrow)


def _ratings_copy(dataset: str, frame: pd.DataFrame, user_ids: dict[int, int], report: ImportReport,
                  progress: bool) -> None:
    """PostgreSQL: COPY every rating into a staging table, then one set-based upsert (inside the import's
    transaction); a rating whose value and time are unchanged is not written again."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    users = frame["user"].map(user_ids).to_numpy(dtype=np.int64)
    table = pa.table({"user_id": users, "movie_id": frame["movie"].to_numpy(dtype=np.int64),
                      "value": frame["value"].to_numpy(dtype=np.float64),
                      "ts": frame["ts"].to_numpy(dtype=np.int64)})
    options = pacsv.WriteOptions(include_header=False)
    with connection.cursor() as cursor, progress_bar(len(table), f"{dataset} ratings (COPY)", progress) as bar:
        cursor.execute("DROP TABLE IF EXISTS apex_rating_stage")
        cursor.execute("CREATE TEMP TABLE apex_rating_stage (user_id integer, movie_id integer, value double precision, "
                       "ts bigint) ON COMMIT DROP")
        with cursor.cursor.copy("COPY apex_rating_stage FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, len(table), COPY_CHUNK):
                sink = pa.BufferOutputStream()
                pacsv.write_csv(table.slice(start, COPY_CHUNK), sink, options)
                copy.write(sink.getvalue().to_pybytes())
                bar.update(min(COPY_CHUNK, len(table) - start))
        cursor.execute("ANALYZE apex_rating_stage")
        rating = Rating._meta.db_table
        if report.counts.get("users created", 0) == len(user_ids):
            # every member was created by this import, so no rating can conflict: a plain INSERT, rows in key
            # order so that the indexes' inserts stay local. Into an empty table (a first load), the unique and
            # foreign-key constraints and the secondary indexes are set aside and built again afterwards, in
            # one sorted pass each, instead of row by row (in this transaction: a failure restores them).
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {rating})")
            rebuild = _set_aside_indexes(cursor, rating) if cursor.fetchone()[0] else []
            cursor.execute(f"INSERT INTO {rating} (user_id, movie_id, value, rated_at, source) "
                           "SELECT user_id, movie_id, value, to_timestamp(ts), %s FROM apex_rating_stage "
                           "ORDER BY user_id, movie_id", [dataset])
            created, updated = cursor.rowcount, 0
            if rebuild:
                bar.set_description(f"{dataset} ratings: building indexes")
                cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
                for statement in rebuild:
                    cursor.execute(statement)
        else:
            cursor.execute(
                f"""WITH up AS (
                      INSERT INTO {rating} (user_id, movie_id, value, rated_at, source)
                      SELECT user_id, movie_id, value, to_timestamp(ts), %s FROM apex_rating_stage
                      ORDER BY user_id, movie_id
                      ON CONFLICT (user_id, movie_id) DO UPDATE SET value = EXCLUDED.value,
                          rated_at = EXCLUDED.rated_at
                      WHERE ({rating}.value, {rating}.rated_at) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.rated_at)
                      RETURNING (xmax = 0) AS created)
                    SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM up""",
                [dataset])
            created, updated = cursor.fetchone()
    report.add("ratings created", created)
    report.add("ratings updated", updated)
    report.add("ratings unchanged", len(frame) - created - updated)


def _set_aside_indexes(cursor: Any, table: str) -> list[str]:
    """Drop the table's unique and foreign-key constraints and secondary indexes (not the primary key, not the
    checks); return the statements that build them again, constraints first."""
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname", [table])
    constraints = cursor.fetchall()
    owned = {name for name, _ in constraints}
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                   "AND tablename = %s AND indexname NOT IN (SELECT conname FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype = 'p') ORDER BY indexname", [table, table])
    indexes = [(name, sql) for name, sql in cursor.fetchall() if name not in owned]
    quote = connection.ops.quote_name
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check this transaction's deferred rows now: no ALTER TABLE
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # on a table with pending trigger events is allowed
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {quote(name)}")
    return ([f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {sql}" for name, sql in constraints]
            + [sql for _, sql in indexes])
