"""MovieLens release layouts (ml-100k, ml-1m, ml-10m, CSV releases) read into one typed shape."""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..models import ML100K_ID_OFFSET
from .errors import ImportFileError
from .readers import RatingsSpec, clean_genres, iter_rows, parse_int, read_ratings, split_title

MAX_TAGS_PER_MOVIE = 30


@dataclass
class MovieRow:
    """One movie as a MovieLens release describes it."""

    id: int
    title: str
    year: int | None
    genres: list[str]
    ml100k_id: int | None = None
    imdb_id: str = ""
    tmdb_id: int | None = None


@dataclass
class MovieLensData:
    """Everything one release gives the catalog."""

    dataset: str
    layout: str
    movies: dict[int, MovieRow]
    ratings: pd.DataFrame  # user, movie, value, ts
    tags: dict[int, list[str]] = field(default_factory=dict)
    owns_movies: bool = True  # False for ml-100k: its titles/genres never overwrite the shared id space


def detect_layout(folder: Path) -> str:
    """Which release layout a folder holds."""
    if (folder / "u.data").exists() and (folder / "u.item").exists():
        return "ml-100k"
    if (folder / "ratings.dat").exists() and (folder / "movies.dat").exists():
        return "ml-10m" if (folder / "tags.dat").exists() else "ml-1m"
    if (folder / "ratings.csv").exists() and (folder / "movies.csv").exists():
        return "csv"
    raise ImportFileError(folder, None, "not a MovieLens folder (expected u.data+u.item, ratings.dat+movies.dat "
                                        "or ratings.csv+movies.csv)")


def dataset_name(folder: Path, layout: str) -> str:
    """'ml-latest-small', 'ml-100k', 'ml-1m', 'ml-10m', 'ml-25m' ... from the folder name."""
    name = folder.name.lower()
    if name.startswith("ml-10m"):
        return "ml-10m"
    if re.fullmatch(r"ml-[a-z0-9-]+", name):
        return name
    return "ml-movielens" if layout == "csv" else layout


@contextmanager
def opened(path: Path) -> Iterator[Path]:
    """A folder as is, or an official zip extracted to a temporary folder (its release folder inside)."""
    if path.is_dir():
        yield path
        return
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise ImportFileError(path, None, "is neither a MovieLens folder nor a zip file")
    with tempfile.TemporaryDirectory(prefix="apex-ml-") as tmp, zipfile.ZipFile(path) as archive:
        archive.extractall(tmp)
        candidates = [Path(tmp)] + sorted(p for p in Path(tmp).iterdir() if p.is_dir())
        for candidate in candidates:
            try:
                detect_layout(candidate)
            except ImportFileError:
                continue
            yield candidate
            return
        raise ImportFileError(path, None, "the zip holds no MovieLens folder")


def read_release(folder: Path, *, dataset: str | None = None, reference: Path | None = None) -> MovieLensData:
    """Read one release folder; `reference` is an ml-latest-small folder used to map ml-100k titles to ids."""
    layout = detect_layout(folder)
    name = dataset or dataset_name(folder, layout)
    if layout == "ml-100k":
        return _read_ml100k(folder, name, reference)
    if layout == "csv":
        movies = read_movies_csv(folder / "movies.csv")
        if (folder / "links.csv").exists():
            _apply_links(folder / "links.csv", movies)
        spec = RatingsSpec(",", ["userId", "movieId", "rating", "timestamp"])
        tags = _read_tags(folder / "tags.csv", ",", ["userId", "movieId", "tag", "timestamp"], "utf-8", movies)
    else:
        encoding = "latin-1" if layout == "ml-1m" else "utf-8"
        movies = _read_movies_dat(folder / "movies.dat", encoding)
        spec = RatingsSpec("::", None)
        tags = _read_tags(folder / "tags.dat", "::", None, encoding, movies)
    ratings = read_ratings(folder / ("ratings.csv" if layout == "csv" else "ratings.dat"), spec,
                           known_movie=_known(movies))
    return MovieLensData(name, layout, movies, ratings, tags)


def _known(movies: dict[int, MovieRow]):  # noqa: ANN202 - a small closure
    ids = np.fromiter(movies.keys(), dtype=np.int64, count=len(movies))
    return lambda values: np.isin(values, ids)


def read_movies_csv(path: Path) -> dict[int, MovieRow]:
    """movies.csv (movieId,title,genres) of the CSV releases."""
    movies: dict[int, MovieRow] = {}
    for line, row in iter_rows(path, sep=",", header=["movieId", "title", "genres"], min_fields=3):
        movie_id = parse_int(path, line, "movieId", row[0], minimum=1)
        title, year = split_title(row[1])
        if not title:
            raise ImportFileError(path, line, "empty title")
        movies[movie_id] = MovieRow(movie_id, title, year, clean_genres(row[2].split("|")))
    return movies


def _apply_links(path: Path, movies: dict[int, MovieRow]) -> None:
    for line, row in iter_rows(path, sep=",", header=["movieId", "imdbId", "tmdbId"], min_fields=2):
        movie_id = parse_int(path, line, "movieId", row[0], minimum=1)
        if movie_id not in movies:
            continue
        imdb = row[1].strip()
        movies[movie_id].imdb_id = f"tt{parse_int(path, line, 'imdbId', imdb):07d}" if imdb else ""
        tmdb = row[2].strip() if len(row) > 2 else ""
        movies[movie_id].tmdb_id = parse_int(path, line, "tmdbId", tmdb, minimum=1) if tmdb else None


def _read_movies_dat(path: Path, encoding: str) -> dict[int, MovieRow]:
    movies: dict[int, MovieRow] = {}
    for line, row in iter_rows(path, sep="::", encoding=encoding, min_fields=3):
        movie_id = parse_int(path, line, "MovieID", row[0], minimum=1)
        title, year = split_title("::".join(row[1:-1]))
        movies[movie_id] = MovieRow(movie_id, title, year, clean_genres(row[-1].split("|")))
    return movies


def _read_tags(path: Path, sep: str, header: list[str] | None, encoding: str,
               movies: dict[int, MovieRow]) -> dict[int, list[str]]:
    """Distinct lower-cased tags per movie, most frequent first (ties alphabetical), at most 30."""
    if not path.exists():
        return {}
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for line, row in iter_rows(path, sep=sep, encoding=encoding, header=header, min_fields=4):
        movie_id = parse_int(path, line, "movieId", row[1], minimum=1)
        tag = sep.join(row[2:-1]).strip().lower()
        if tag and movie_id in movies:
            counts[movie_id][tag] += 1
    return {movie_id: [t for t, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TAGS_PER_MOVIE]]
            for movie_id, c in counts.items()}


def _read_ml100k(folder: Path, name: str, reference: Path | None) -> MovieLensData:
    genre_names = [row[0] for _, row in iter_rows(folder / "u.genre", sep="|", encoding="latin-1", min_fields=2)]
    by_title = _reference_titles(reference)
    item_to_movie: dict[int, int] = {}
    movies: dict[int, MovieRow] = {}
    first_item_of: dict[str, int] = {}  # ml-100k lists a few films twice: both items map to one movie
    path = folder / "u.item"
    for line, row in iter_rows(path, sep="|", encoding="latin-1", min_fields=5 + len(genre_names)):
        item = parse_int(path, line, "item id", row[0], minimum=1)
        flags = row[5: 5 + len(genre_names)]
        genres = clean_genres([g for g, flag in zip(genre_names, flags, strict=True) if flag.strip() == "1"])
        matched = by_title.get(row[1].strip())
        movie_id = matched.id if matched else ML100K_ID_OFFSET + first_item_of.setdefault(row[1].strip(), item)
        item_to_movie[item] = movie_id
        if movie_id in movies:
            continue
        title, year = split_title(row[1]) if row[1].strip() != "unknown" else ("unknown", None)
        if year is None and row[2].strip():
            year = int(row[2].strip()[-4:]) if row[2].strip()[-4:].isdigit() else None
        movies[movie_id] = MovieRow(movie_id, title, year, genres, ml100k_id=item,
                                    imdb_id=matched.imdb_id if matched else "",
                                    tmdb_id=matched.tmdb_id if matched else None)
    ids = np.fromiter(item_to_movie.keys(), dtype=np.int64, count=len(item_to_movie))
    ratings = read_ratings(folder / "u.data", RatingsSpec("\t", None), known_movie=lambda v: np.isin(v, ids))
    lookup = pd.Series(item_to_movie)
    ratings["movie"] = lookup.reindex(ratings["movie"].to_numpy()).to_numpy(dtype=np.int64)
    return MovieLensData(name, "ml-100k", movies, ratings, owns_movies=False)


def _reference_titles(reference: Path | None) -> dict[str, MovieRow]:
    """Exact 'Title (Year)' -> ml-latest-small movie (first id wins for duplicate titles), with links."""
    if reference is None or not (reference / "movies.csv").exists():
        return {}
    path = reference / "movies.csv"
    movies = read_movies_csv(path)
    if (reference / "links.csv").exists():
        _apply_links(reference / "links.csv", movies)
    by_title: dict[str, MovieRow] = {}
    for _, row in iter_rows(path, sep=",", header=["movieId", "title", "genres"], min_fields=3):
        by_title.setdefault(row[1].strip(), movies[int(row[0])])
    return by_title
