"""Readers for MovieLens files: typed, validated rows, and errors that name the file and line."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ImportFileError

TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
GENRE_ALIASES = {"Children's": "Children", "(no genres listed)": "", "unknown": ""}
# MovieLens files an article after the title ("Matrix, The", "Cité des enfants perdus, La"); people read it first
ARTICLES = ("The", "A", "An", "Les", "La", "Le", "L'", "Il", "El", "Lo", "Los", "Las", "Das", "Der", "Die", "Den",
            "Det", "De", "Het", "Une", "Un", "Ein", "Eine", "Gli", "I", "Os", "As", "O", "Um", "Uma")
TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+?), (?P<article>" + "|".join(re.escape(a) for a in ARTICLES)
                              + r")(?P<tail>\s*\(.*\))?$")
Row = list[str]


def split_title(raw: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995), 'Matrix, The (1999)' -> ('The Matrix', 1999); titles without
    a year keep year None."""
    match = TITLE_YEAR.match(raw.strip())
    if not match:
        return natural_title(raw.strip()), None
    return natural_title(match.group("title").strip() or raw.strip()), int(match.group("year"))


def natural_title(title: str) -> str:
    """The article in front: 'Matrix, The' -> 'The Matrix', 'Cité des enfants perdus, La' -> 'La Cité des enfants
    perdus', 'City of Lost Children, The (Cité des enfants perdus, La)' -> 'The City of Lost Children (Cité des
    enfants perdus, La)'; other titles unchanged."""
    match = TRAILING_ARTICLE.match(title)
    if not match:
        return title
    article, rest, tail = match.group("article"), match.group("rest"), match.group("tail") or ""
    return f"{article}{'' if article.endswith(chr(39)) else ' '}{rest}{tail}"


def clean_genres(names: list[str]) -> list[str]:
    """Normalise genre names across MovieLens releases (drop 'unknown', "Children's" -> 'Children')."""
    cleaned = (GENRE_ALIASES.get(n.strip(), n.strip()) for n in names)
    return sorted({n for n in cleaned if n})


def iter_rows(path: Path, *, sep: str, encoding: str = "utf-8", header: list[str] | None = None,
              min_fields: int = 1) -> Iterator[tuple[int, Row]]:
    """Yield (line number, fields) for every non-blank line; checks the header and the field count."""
    try:
        with path.open(encoding=encoding, newline="") as handle:
            if sep == ",":
                source: Iterator[Row] = csv.reader(handle)
                lines = ((reader_line, row) for reader_line, row in _numbered_csv(source))
            else:
                lines = ((n, line.rstrip("\r\n").split(sep)) for n, line in enumerate(handle, start=1))
            for number, row in lines:
                if number == 1 and header is not None:
                    if [c.strip().lstrip("\ufeff") for c in row[: len(header)]] != header:
                        raise ImportFileError(path, 1, f"expected header {','.join(header)}, got {','.join(row)}")
                    continue
                if not row or row == [""]:
                    continue
                if len(row) < min_fields:
                    raise ImportFileError(path, number, f"expected {min_fields} fields, got {len(row)}: {row!r}")
                yield number, row
    except UnicodeDecodeError as exc:
        raise ImportFileError(path, None, f"not valid {encoding} text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise ImportFileError(path, None, f"malformed CSV: {exc}") from exc


def _numbered_csv(reader: Iterator[Row]) -> Iterator[tuple[int, Row]]:
    for row in reader:
        yield reader.line_num, row  # type: ignore[attr-defined]


def parse_int(path: Path, line: int, name: str, raw: str, *, minimum: int = 0) -> int:
    """An integer field, or an ImportFileError naming file, line and column."""
    try:
        value = int(raw.strip())
    except ValueError:
        try:
            as_float = float(raw)
        except ValueError:
            as_float = math.nan
        if not as_float.is_integer():
            raise ImportFileError(path, line, f"{name} must be an integer, got {raw!r}") from None
        value = int(as_float)
    if value < minimum:
        raise ImportFileError(path, line, f"{name} must be >= {minimum}, got {raw!r}")
    return value


def parse_rating(path: Path, line: int, raw: str) -> float:
    """A rating value in 0.5..5."""
    try:
        value = float(raw)
    except ValueError:
        raise ImportFileError(path, line, f"rating must be a number, got {raw!r}") from None
    if not 0.5 <= value <= 5.0:
        raise ImportFileError(path, line, f"rating must be between 0.5 and 5, got {raw!r}")
    return value


def _scan_ratings(path: Path, spec: RatingsSpec) -> None:
    """Slow, exact pass used only after the fast read failed: raises for the first bad line."""
    for number, row in iter_rows(path, sep=spec.sep, encoding="latin-1", header=spec.header, min_fields=4):
        if len(row) != 4 + spec.extra_fields:
            raise ImportFileError(path, number, f"expected {4 + spec.extra_fields} fields, got {len(row)}: {row!r}")
        parse_int(path, number, "userId", row[0], minimum=1)
        parse_int(path, number, "movieId", row[1], minimum=1)
        parse_rating(path, number, row[2])
        parse_int(path, number, "timestamp", row[3])


class RatingsSpec:
    """How one MovieLens release lays out its ratings file."""

    def __init__(self, sep: str, header: list[str] | None, extra_fields: int = 0) -> None:
        self.sep, self.header, self.extra_fields = sep, header, extra_fields


def read_ratings(path: Path, spec: RatingsSpec, *, known_movie: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    """Ratings as a frame (user, movie, value, ts), validated; any bad line raises ImportFileError naming it."""
    try:
        raw = path.read_bytes()
        sep = spec.sep
        if len(sep) > 1:  # "::" layouts: map to a one-byte separator so the C parser can read them
            raw, sep = raw.replace(sep.encode(), b"\x1f"), "\x1f"
        frame = pd.read_csv(io.BytesIO(raw), sep=sep, header=0 if spec.header else None,
                            names=["user", "movie", "value", "ts"], usecols=[0, 1, 2, 3],
                            dtype={"user": np.int64, "movie": np.int64, "value": np.float64, "ts": np.int64},
                            engine="c")
    except (ValueError, pd.errors.ParserError, OverflowError):
        _scan_ratings(path, spec)
        raise ImportFileError(path, None, "could not be parsed as a ratings file") from None
    bad = ((frame["user"] < 1) | (frame["movie"] < 1) | (frame["ts"] < 0)
           | ~frame["value"].between(0.5, 5.0)).to_numpy()
    if bad.any():
        _scan_ratings(path, spec)
    unknown = ~known_movie(frame["movie"].to_numpy())
    if unknown.any():
        position = int(np.argmax(unknown))
        line = _line_of_row(path, position, spec)
        raise ImportFileError(path, line, f"movieId {int(frame['movie'].iloc[position])} is not in the movies file")
    return frame


def _line_of_row(path: Path, position: int, spec: RatingsSpec) -> int:
    """The file line holding data row number `position` (0-based), skipping blank lines like pandas does."""
    seen = -1
    for number, _ in iter_rows(path, sep=spec.sep, encoding="latin-1", header=spec.header):
        seen += 1
        if seen == position:
            return number
    return 0
