"""One local Spark session for the whole run (fast JVM flags) and small slices of the real data."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.config import SHARED_DATA

ML100K = SHARED_DATA / "ml-100k"
ML_SMALL = SHARED_DATA / "ml-latest-small"
TMDB = SHARED_DATA / "tmdb"
# Tiny inputs: skip whole-stage code generation and adaptive re-planning, whose fixed costs dominate here.
TEST_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:  # noqa: F821
    """local[2] with 2 shuffle partitions: small data, short queries."""
    from lakehouse.spark import java_available, spark_session

    if not java_available():
        pytest.skip("needs Java 17 for local Spark")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its __del__ logs after pytest closes the streams
    session = spark_session(
        master="local[2]", app_name="apex-lakehouse-tests", shuffle_partitions=2, fast_jvm=True, extra_conf=TEST_CONF
    )
    yield session
    session.stop()


def _head(src: Path, dst: Path, lines: int, encoding: str = "utf-8") -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding=encoding, newline="") as fh:
        dst.write_text("".join(next(fh) for _ in range(lines)), encoding=encoding, newline="")
    return dst


@pytest.fixture(scope="session")
def ml100k_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ml-100k with the first 3,000 ratings and every movie."""
    folder = tmp_path_factory.mktemp("ml-100k-slice")
    _head(ML100K / "u.data", folder / "u.data", 3000)
    for name in ("u.item", "u.genre"):
        shutil.copy(ML100K / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def ml_small_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ml-latest-small with the first 2,000 ratings and the first 300 movies and links."""
    folder = tmp_path_factory.mktemp("ml-latest-small-slice")
    _head(ML_SMALL / "ratings.csv", folder / "ratings.csv", 2001)
    for name in ("movies.csv", "links.csv"):
        _head(ML_SMALL / name, folder / name, 301)
    return folder


@pytest.fixture(scope="session")
def tmdb_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 rows of both TMDB movie files and their keywords, re-quoted by pandas (records span lines)."""
    import pandas as pd

    folder = tmp_path_factory.mktemp("tmdb-slice")
    ids: set[str] = set()
    for rel in ("tmdb-5000/tmdb_5000_movies.csv", "the-movies-dataset/movies_metadata_small.csv"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        part = pd.read_csv(TMDB / rel, nrows=400, dtype=str)
        part.to_csv(folder / rel, index=False)
        ids |= set(part["id"])
    keywords = pd.read_csv(TMDB / "the-movies-dataset/keywords.csv", dtype=str)
    keywords[keywords["id"].isin(ids)].to_csv(folder / "the-movies-dataset/keywords.csv", index=False)
    return folder
