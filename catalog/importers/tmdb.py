"""Enrich the catalog from the TMDB dumps, HetRec directors and (optionally) the TMDB API."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Collection, Credit, Movie, Person
from ..services import movie_search_text_refresh
from ..services.bulk import bulk_update_fast
from ..tmdb_client import TMDBClient, movie_fields_from_api
from .enrichment import enrichment_read
from .movielens import ImportReport
from .progress import progress_bar
from .tmdb_files import read_hetrec_directors, read_keywords, read_movies_metadata, read_tmdb_5000, read_tmdb_metadata

logger = logging.getLogger(__name__)
ENRICHED = ["overview", "tagline", "release_date", "runtime", "poster_path", "vote_average", "vote_count",
            "popularity", "keywords", "collection_id"]
CreditKey = tuple[int, str, str]  # movie id, person external id, role


def merge_files(path: Path, wanted: set[int]) -> dict[int, dict[str, Any]]:
    """tmdb id -> merged fields; earlier sources win per field (README: coverage and join keys)."""
    sources: list[dict[int, dict[str, Any]]] = []
    numbers = path / "ml-latest-small-tmdb" / "tmdb_metadata.csv"
    metadata = path / "the-movies-dataset" / "movies_metadata_small.csv"
    tmdb5000 = path / "tmdb-5000" / "tmdb_5000_movies.csv"
    keywords = path / "the-movies-dataset" / "keywords.csv"
    if numbers.exists():
        sources.append(read_tmdb_metadata(numbers, wanted))
    if metadata.exists():
        sources.append(read_movies_metadata(metadata, wanted))
    if tmdb5000.exists():
        sources.append(read_tmdb_5000(tmdb5000, wanted))
    if keywords.exists():
        sources.append({k: {"keywords": v} for k, v in read_keywords(keywords, wanted).items()})
    merged: dict[int, dict[str, Any]] = {}
    for source in sources:
        for tmdb_id, fields in source.items():
            target = merged.setdefault(tmdb_id, {})
            for key, value in fields.items():
                if value not in (None, "", []) and key not in target:
                    target[key] = value
    return merged


def _date(text: str) -> dt.date | None:
    """'1995-10-30' -> a date; anything else (empty, '0', a bare year) -> None."""
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _apply(movie: Movie, fields: dict[str, Any], collections: dict[int, str]) -> bool:
    """Set the non-empty fields on the movie; True when anything changed."""
    values = dict(fields)
    if "collection" in values:
        collection = values.pop("collection")
        if collection:
            collections[collection[0]] = collection[1]
            values["collection_id"] = collection[0]
    if values.get("runtime") is not None:
        values["runtime"] = int(values["runtime"]) or None
    if values.get("vote_count") is not None:
        values["vote_count"] = int(values["vote_count"])
    if isinstance(values.get("release_date"), str):
        values["release_date"] = _date(values["release_date"])
    if values.get("tagline"):
        values["tagline"] = str(values["tagline"])[:255]
    changed = False
    for key in ENRICHED:
        value = values.get(key)
        if value not in (None, "", []) and getattr(movie, key) != value:
            setattr(movie, key, value)
            changed = True
    return changed


def import_tmdb(*, path: Path | None, directors: Path | None, client: TMDBClient | None = None,
                api_limit: int | None = None, progress: bool = True, batch_size: int = 2000,
                enrichment: Path | None = None) -> ImportReport:
    """Enrich every movie with a TMDB id from the files, then the API (when a client is given), in one transaction.

    ``enrichment`` is the shipped table (catalog/importers/enrichment.py), read instead of the dumps and HetRec
    (give it with ``path`` and ``directors`` None).
    """
    report = ImportReport("tmdb")
    movies = list(Movie.objects.only("id", "tmdb_id", "imdb_id", *ENRICHED))
    wanted = {m.tmdb_id for m in movies if m.tmdb_id}
    merged = merge_files(path, wanted) if path else {}
    hetrec = read_hetrec_directors(directors) if directors else {}
    if enrichment is not None:
        merged, hetrec = enrichment_read(enrichment, wanted)
    collections: dict[int, str] = {}
    changed = {m.id: m for m in movies if m.tmdb_id in merged and _apply(m, merged[m.tmdb_id], collections)}
    credits: dict[CreditKey, tuple[str, int, str, int | None]] = {}  # -> (name, order, character, tmdb person)
    for movie in movies:
        entry = hetrec.get(movie.id)
        if entry and movie.imdb_id and entry[0] == movie.imdb_id:  # SOURCE.md: drop rows whose IMDb ids disagree
            for order, (slug, name) in enumerate(entry[1]):
                credits[(movie.id, f"hetrec:{slug}", Credit.Role.DIRECTOR)] = (name, order, "", None)
    if client is not None:
        _from_api(client, movies, changed, collections, credits, api_limit, progress, report)
    with transaction.atomic():
        _write_collections(collections, report)
        now = timezone.now()
        for movie in changed.values():
            movie.updated_at = now
        bulk_update_fast(list(changed.values()), [*ENRICHED, "updated_at"], batch_size=batch_size)
        report.add("movies updated", len(changed))
        _write_credits(credits, report, batch_size)
        report.add("search text updated", movie_search_text_refresh())
    logger.info("imported %s", report)
    return report


def _from_api(client: TMDBClient, movies: list[Movie], changed: dict[int, Movie], collections: dict[int, str],
              credits: dict[CreditKey, tuple[str, int, str, int | None]], limit: int | None, progress: bool,
              report: ImportReport) -> None:
    """Fetch details for movies that still miss an overview, a poster or cast (at most `limit` calls)."""
    with_cast = set(Credit.objects.filter(role=Credit.Role.CAST).values_list("movie_id", flat=True).distinct())
    todo = [m for m in movies if m.tmdb_id and (not m.overview or not m.poster_path or m.id not in with_cast)]
    todo = todo[:limit] if limit is not None else todo
    directed = {key[0] for key in credits} | set(
        Credit.objects.filter(role=Credit.Role.DIRECTOR).values_list("movie_id", flat=True))
    with progress_bar(len(todo), "TMDB API", progress) as bar:
        for movie in todo:
            assert movie.tmdb_id is not None  # todo holds only movies with a TMDB id
            payload = client.movie(movie.tmdb_id)
            bar.update(1)
            report.add("api calls", 1)
            if payload is None:
                continue
            fields = movie_fields_from_api(payload)
            people = {"directors": fields.pop("directors"), "cast": fields.pop("cast")}
            fields.pop("imdb_id")
            if _apply(movie, fields, collections):
                changed[movie.id] = movie
            if movie.id not in directed:
                for order, (pid, name) in enumerate(people["directors"]):
                    credits[(movie.id, f"tmdb:{pid}", Credit.Role.DIRECTOR)] = (name, order, "", pid)
            for pid, name, character, order in people["cast"]:
                credits[(movie.id, f"tmdb:{pid}", Credit.Role.CAST)] = (name, order, character, pid)


def _write_collections(collections: dict[int, str], report: ImportReport) -> None:
    existing = Collection.objects.in_bulk(list(collections))
    new = [Collection(id=cid, name=name) for cid, name in collections.items() if cid not in existing]
    renamed = [c for c in existing.values() if c.name != collections[c.id]]
    for collection in renamed:
        collection.name = collections[collection.id]
    Collection.objects.bulk_create(new)
    Collection.objects.bulk_update(renamed, ["name"])
    report.add("collections created", len(new))
    report.add("collections updated", len(renamed))


def _write_credits(credits: dict[CreditKey, tuple[str, int, str, int | None]], report: ImportReport,
                   batch_size: int) -> None:
    people = {key[1]: (value[0], value[3]) for key, value in credits.items()}
    existing = dict(Person.objects.filter(external_id__in=list(people)).values_list("external_id", "id"))
    new = [Person(external_id=ext, name=name, tmdb_id=tmdb) for ext, (name, tmdb) in people.items()
           if ext not in existing]
    Person.objects.bulk_create(new, batch_size=batch_size)
    report.add("people created", len(new))
    if new:
        existing = dict(Person.objects.filter(external_id__in=list(people)).values_list("external_id", "id"))
    have = set(Credit.objects.values_list("movie_id", "person__external_id", "role"))
    rows = [Credit(movie_id=m, person_id=existing[ext], role=role, order=order, character=character)
            for (m, ext, role), (_, order, character, _) in credits.items() if (m, ext, role) not in have]
    Credit.objects.bulk_create(rows, batch_size=batch_size)
    report.add("credits created", len(rows))
