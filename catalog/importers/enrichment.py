"""The enrichment table shipped with the embedded catalogue (data/ml-latest-small/enrichment/).

``enrichment_write`` builds it from the TMDB dumps and HetRec directors in ``../shared/data`` (the same readers
and precedence as ``import_tmdb --path``), for the movies of a MovieLens ``links.csv``; ``enrichment_read``
turns it back into what ``import_tmdb`` applies, so a clean clone without ``../shared`` gets the same catalogue.

Files: ``tmdb.csv.gz`` (one row per TMDB id: overview, tagline, release date, runtime, keywords, votes,
popularity, poster path, collection) and ``directors.csv.gz`` (HetRec 2011: movieId, IMDb id, director id, name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ImportFileError
from .tmdb_files import read_hetrec_directors

TMDB_FILE = "tmdb.csv.gz"
DIRECTORS_FILE = "directors.csv.gz"
COLUMNS = ["tmdb_id", "overview", "tagline", "release_date", "runtime", "keywords", "vote_average", "vote_count",
           "popularity", "poster_path", "collection_id", "collection_name"]


def enrichment_write(*, links: Path, tmdb: Path, directors: Path | None, out: Path) -> dict[str, int]:
    """Write the table for the movies in ``links`` (MovieLens links.csv); returns row counts."""
    from .tmdb import merge_files

    ids = pd.read_csv(links, dtype={"tmdbId": "Int64"})
    wanted = {int(t) for t in ids["tmdbId"].dropna().tolist()}
    merged = merge_files(tmdb, wanted)
    rows = []
    for tmdb_id in sorted(merged):
        fields = merged[tmdb_id]
        collection = fields.get("collection")
        rows.append({
            "tmdb_id": tmdb_id, "overview": fields.get("overview", ""), "tagline": fields.get("tagline", ""),
            "release_date": fields.get("release_date", ""), "runtime": fields.get("runtime"),
            "keywords": json.dumps(fields.get("keywords", []), ensure_ascii=False),
            "vote_average": fields.get("vote_average"), "vote_count": fields.get("vote_count"),
            "popularity": fields.get("popularity"), "poster_path": fields.get("poster_path", ""),
            "collection_id": collection[0] if collection else None,
            "collection_name": collection[1] if collection else "",
        })
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"collection_id": "Int64", "vote_count": "Int64",
                                                        "runtime": "Int64"})
    table.to_csv(out / TMDB_FILE, index=False, compression={"method": "gzip", "mtime": 0})
    counts = {"tmdb rows": len(table)}
    if directors is not None and directors.is_dir():
        movie_ids = set(ids["movieId"].tolist())
        people = [{"movie_id": m, "imdb_id": imdb, "director_id": slug, "name": name}
                  for m, (imdb, found) in sorted(read_hetrec_directors(directors).items()) if m in movie_ids
                  for slug, name in found]
        pd.DataFrame(people, columns=["movie_id", "imdb_id", "director_id", "name"]).to_csv(
            out / DIRECTORS_FILE, index=False, compression={"method": "gzip", "mtime": 0})
        counts["director rows"] = len(people)
    return counts


def enrichment_read(folder: Path, wanted: set[int]) -> tuple[dict[int, dict[str, Any]],
                                                               dict[int, tuple[str, list[tuple[str, str]]]]]:
    """(tmdb id -> fields, as ``import_tmdb`` merges them from the dumps; movie id -> (IMDb id, directors))."""
    path = folder / TMDB_FILE
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError(path, None, f"unreadable enrichment table: {exc}") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ImportFileError(path, 1, f"missing columns {missing}")
    merged: dict[int, dict[str, Any]] = {}
    for row, rec in enumerate(frame.to_dict("records")):
        try:
            tmdb_id = int(rec["tmdb_id"])
            keywords = json.loads(rec["keywords"]) if rec["keywords"] else []
        except ValueError as exc:
            raise ImportFileError(path, row + 2, f"bad tmdb_id or keywords: {exc}") from exc
        if tmdb_id not in wanted:
            continue
        merged[tmdb_id] = {
            "overview": rec["overview"], "tagline": rec["tagline"], "release_date": rec["release_date"],
            "runtime": _number(rec["runtime"]), "keywords": keywords,
            "vote_average": _number(rec["vote_average"]), "vote_count": _number(rec["vote_count"]),
            "popularity": _number(rec["popularity"]), "poster_path": rec["poster_path"],
            "collection": (int(rec["collection_id"]), rec["collection_name"]) if rec["collection_id"] else None,
        }
    directors: dict[int, tuple[str, list[tuple[str, str]]]] = {}
    if (folder / DIRECTORS_FILE).exists():
        people = pd.read_csv(folder / DIRECTORS_FILE, dtype=str, keep_default_na=False)
        for rec in people.to_dict("records"):
            entry = directors.setdefault(int(rec["movie_id"]), (rec["imdb_id"], []))
            entry[1].append((rec["director_id"], rec["name"]))
    return merged, directors


def _number(text: str) -> float | None:
    try:
        return float(text) if text != "" else None
    except ValueError:
        return None
