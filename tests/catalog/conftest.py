"""Catalog fixtures: small real slices of MovieLens files written to tmp folders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.conf import settings

EMBEDDED = Path(settings.BASE_DIR) / "data" / "ml-latest-small"
SHARED = Path(settings.BASE_DIR).parent / "shared" / "data"
SLICE_MOVIES = {1, 2, 3, 6, 32, 47, 50, 260, 296, 318, 356, 480, 527, 589, 593, 1196, 1198, 1210, 2571, 4993}


def _filtered_csv(source: Path, target: Path, keep, limit: int | None = None) -> None:  # noqa: ANN001
    with source.open(newline="", encoding="utf-8") as src, target.open("w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        written = 0
        for row in reader:
            if keep(row) and (limit is None or written < limit):
                writer.writerow(row)
                written += 1


def write_ml_small_slice(folder: Path, movies: set[int] = SLICE_MOVIES, ratings: int = 600) -> Path:
    """A real ml-latest-small slice: these movies, their links/tags and the first `ratings` ratings of them."""
    folder.mkdir(parents=True, exist_ok=True)
    keep = lambda row: int(row[1 if len(row) == 4 else 0]) in movies  # noqa: E731
    _filtered_csv(EMBEDDED / "movies.csv", folder / "movies.csv", keep)
    _filtered_csv(EMBEDDED / "links.csv", folder / "links.csv", lambda r: int(r[0]) in movies)
    _filtered_csv(EMBEDDED / "tags.csv", folder / "tags.csv", lambda r: int(r[1]) in movies)
    _filtered_csv(EMBEDDED / "ratings.csv", folder / "ratings.csv", lambda r: int(r[1]) in movies, limit=ratings)
    return folder


@pytest.fixture
def ml_small_slice(tmp_path: Path) -> Path:
    return write_ml_small_slice(tmp_path / "ml-latest-small")


@pytest.fixture
def ml100k_slice(tmp_path: Path) -> Path:
    """All of ml-100k's items with its first 3,000 ratings (skips when ../shared/data is absent)."""
    source = SHARED / "ml-100k"
    if not source.exists():
        pytest.skip("../shared/data/ml-100k is not on this machine")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for name in ("u.item", "u.genre"):
        (folder / name).write_bytes((source / name).read_bytes())
    lines = (source / "u.data").read_bytes().splitlines(keepends=True)[:3000]
    (folder / "u.data").write_bytes(b"".join(lines))
    return folder
