"""Readers for the TMDB CSV dumps and HetRec 2011 directors in ../shared/data (see their README/SOURCE)."""

from __future__ import annotations

import ast
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ImportFileError

Fields = dict[str, Any]


def _records(frame: pd.DataFrame, column: str, wanted: set[int] | None) -> list[tuple[int, dict[str, Any]]]:
    """(row index, record) pairs, only for rows whose TMDB id is wanted (the row index keeps error lines right)."""
    if wanted is not None:
        frame = frame[pd.to_numeric(frame[column], errors="coerce").isin(wanted)]
    return list(zip(frame.index.tolist(), frame.to_dict("records"), strict=True))


def _read(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    except pd.errors.ParserError as exc:
        raise ImportFileError(path, _line_from(str(exc)), f"malformed CSV: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError(path, None, f"unreadable: {exc}") from exc


def _line_from(message: str) -> int | None:
    words = message.replace(",", " ").split()
    for i, word in enumerate(words[:-1]):
        if word == "line" and words[i + 1].isdigit():
            return int(words[i + 1])
    return None


def _literal(path: Path, row: int, column: str, raw: str, *, as_json: bool = False) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw) if as_json else ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise ImportFileError(path, row + 2, f"column {column}: not a valid list/dict literal") from exc


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _tmdb_id(raw: str) -> int | None:
    value = _number(raw)
    return int(value) if value is not None and value > 0 else None


def read_movies_metadata(path: Path, wanted: set[int] | None = None) -> dict[int, Fields]:
    """the-movies-dataset/movies_metadata_small.csv: poster, overview, collection, runtime, votes."""
    frame = _read(path)
    result: dict[int, Fields] = {}
    for row, rec in _records(frame, "id", wanted):
        tmdb_id = _tmdb_id(rec["id"])
        if tmdb_id is None or (wanted is not None and tmdb_id not in wanted):
            continue
        collection = _literal(path, row, "belongs_to_collection", rec["belongs_to_collection"])
        result[tmdb_id] = {
            "overview": rec["overview"].strip(), "poster_path": rec["poster_path"].strip(),
            "tagline": rec.get("tagline", "").strip(), "release_date": rec.get("release_date", "").strip(),
            "runtime": _number(rec["runtime"]), "vote_average": _number(rec["vote_average"]),
            "vote_count": _number(rec["vote_count"]), "popularity": _number(rec["popularity"]),
            "collection": (int(collection["id"]), collection["name"]) if isinstance(collection, dict) else None,
        }
    return result


def read_tmdb_5000(path: Path, wanted: set[int] | None = None) -> dict[int, Fields]:
    """tmdb-5000/tmdb_5000_movies.csv: overview, keywords, runtime, votes."""
    frame = _read(path)
    result: dict[int, Fields] = {}
    for row, rec in _records(frame, "id", wanted):
        tmdb_id = _tmdb_id(rec["id"])
        if tmdb_id is None or (wanted is not None and tmdb_id not in wanted):
            continue
        keywords = _literal(path, row, "keywords", rec["keywords"], as_json=True) or []
        result[tmdb_id] = {
            "overview": rec["overview"].strip(), "runtime": _number(rec["runtime"]),
            "tagline": rec.get("tagline", "").strip(), "release_date": rec.get("release_date", "").strip(),
            "keywords": [k["name"] for k in keywords], "vote_average": _number(rec["vote_average"]),
            "vote_count": _number(rec["vote_count"]), "popularity": _number(rec["popularity"]),
        }
    return result


def read_keywords(path: Path, wanted: set[int] | None = None) -> dict[int, list[str]]:
    """the-movies-dataset/keywords.csv: TMDB keywords (first non-empty row per id wins)."""
    frame = _read(path)
    result: dict[int, list[str]] = {}
    for row, rec in _records(frame, "id", wanted):
        tmdb_id = _tmdb_id(rec["id"])
        if tmdb_id is None or result.get(tmdb_id) or (wanted is not None and tmdb_id not in wanted):
            continue
        result[tmdb_id] = [k["name"] for k in _literal(path, row, "keywords", rec["keywords"]) or []]
    return result


def read_tmdb_metadata(path: Path, wanted: set[int] | None = None) -> dict[int, Fields]:
    """ml-latest-small-tmdb/tmdb_metadata.csv: popularity, vote average and count, by TMDB id."""
    frame = _read(path)
    result: dict[int, Fields] = {}
    for _, rec in _records(frame, "tmdbId", wanted):
        tmdb_id = _tmdb_id(rec["tmdbId"])
        if tmdb_id is not None and (wanted is None or tmdb_id in wanted):
            result[tmdb_id] = {"vote_average": _number(rec["tmdb_rating"]), "vote_count": _number(rec["vote_count"]),
                               "popularity": _number(rec["popularity"])}
    return result


def read_hetrec_directors(folder: Path) -> dict[int, tuple[str, list[tuple[str, str]]]]:
    """HetRec movie id -> (IMDb id 'tt0114709', [(directorID, name)]), from movies.dat + movie_directors.dat."""
    options = {"sep": "\t", "encoding": "latin-1", "quoting": 3}
    movies = _read(folder / "movies.dat", usecols=["id", "imdbID"], **options)
    directors = _read(folder / "movie_directors.dat", **options)
    imdb = {int(r["id"]): f"tt{int(r['imdbID']):07d}" for r in movies.to_dict("records") if r["imdbID"].isdigit()}
    by_movie: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for row, rec in enumerate(directors.to_dict("records")):
        if not rec["movieID"].isdigit():
            raise ImportFileError(folder / "movie_directors.dat", row + 2, f"movieID {rec['movieID']!r} is not a number")
        by_movie[int(rec["movieID"])].append((rec["directorID"].strip(), rec["directorName"].strip()))
    return {m: (imdb[m], people) for m, people in by_movie.items() if m in imdb}
