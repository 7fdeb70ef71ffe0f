"""Where the lakehouse reads from and writes to; every value comes from the environment with a working default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import tables as T
from .bronze import SourceFile, source_file

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
EMBEDDED_ML = REPO_ROOT / "data" / "ml-latest-small"
KNOWN_DATASETS = ("ml-100k", "ml-latest-small")
TMDB_FILES = (
    "tmdb-5000/tmdb_5000_movies.csv",
    "the-movies-dataset/movies_metadata_small.csv",
    "the-movies-dataset/keywords.csv",
)


class SourceError(ValueError):
    """A configured input that does not exist or has an unknown layout; the message names it."""


def dataset_folder(name: str) -> Path:
    """Folder of a named MovieLens dataset (shipped copy first), or the path itself."""
    if name == "ml-latest-small" and (EMBEDDED_ML / "ratings.csv").exists():
        return EMBEDDED_ML
    if name in KNOWN_DATASETS:
        return SHARED_DATA / name
    return Path(name)


@dataclass(frozen=True)
class LakehouseConfig:
    """Inputs and output root of one pipeline run."""

    root: Path
    datasets: tuple[str, ...] = ("ml-latest-small",)  # MovieLens datasets whose ratings are ingested
    reference_dataset: str = "ml-latest-small"  # movies + links used to join TMDB (ml-100k matches by title)
    tmdb_dir: Path | None = None
    events_dir: Path | None = None  # folder of event exports (*.jsonl, *.json, *.parquet)
    events_dataset: str = "ml-latest-small"  # id space of the site's movie ids
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> LakehouseConfig:
        """Read LAKEHOUSE_* variables; unset ones fall back to the repository's data and var/ folders."""
        tmdb = Path(os.environ.get("LAKEHOUSE_TMDB_DIR", str(SHARED_DATA / "tmdb")))
        return cls(
            root=Path(os.environ.get("LAKEHOUSE_ROOT", str(REPO_ROOT / "var" / "lakehouse"))),
            datasets=tuple(
                d.strip() for d in os.environ.get("LAKEHOUSE_DATASETS", "ml-latest-small").split(",") if d.strip()
            ),
            reference_dataset=os.environ.get("LAKEHOUSE_REFERENCE_DATASET", "ml-latest-small"),
            tmdb_dir=tmdb if tmdb.exists() else None,
            events_dir=Path(os.environ.get("LAKEHOUSE_EVENTS_DIR", str(REPO_ROOT / "var" / "exports" / "events"))),
            events_dataset=os.environ.get("LAKEHOUSE_EVENTS_DATASET", "ml-latest-small"),
        )


def _movielens_files(name: str, with_ratings: bool) -> dict[str, list[SourceFile]]:
    folder = dataset_folder(name)
    label = name if name in KNOWN_DATASETS else folder.name
    if (folder / "u.data").exists():
        files = {T.BRONZE_MOVIES: [source_file(f"{label}/u.item", label, "ml-100k", folder / "u.item")]}
        if with_ratings:
            files[T.BRONZE_RATINGS] = [source_file(f"{label}/u.data", label, "ml-100k", folder / "u.data")]
        return files
    if (folder / "ratings.csv").exists():
        files = {T.BRONZE_MOVIES: [source_file(f"{label}/movies.csv", label, "ml-latest", folder / "movies.csv")]}
        if (folder / "links.csv").exists():
            files[T.BRONZE_LINKS] = [source_file(f"{label}/links.csv", label, "ml-latest", folder / "links.csv")]
        if with_ratings:
            files[T.BRONZE_RATINGS] = [source_file(f"{label}/ratings.csv", label, "ml-latest", folder / "ratings.csv")]
        return files
    raise SourceError(f"{folder}: not a MovieLens folder (expected u.data or ratings.csv)")


def event_files(events_dir: Path | None) -> list[SourceFile]:
    """Event exports in a folder, oldest name first (exports are named so that this is their order)."""
    if events_dir is None or not events_dir.exists():
        return []
    found = []
    for path in sorted(events_dir.iterdir()):
        layout = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
        if layout and path.is_file():
            found.append(source_file(f"events/{path.name}", "events", layout, path))
    return found


def discover_sources(config: LakehouseConfig) -> dict[str, list[SourceFile]]:
    """Every input file of a run, grouped by the bronze table it feeds."""
    out: dict[str, list[SourceFile]] = {t: [] for t in T.BRONZE_TABLES}
    wanted = list(dict.fromkeys([*config.datasets, config.reference_dataset]))
    for name in wanted:
        for table, files in _movielens_files(name, with_ratings=name in config.datasets).items():
            out[table].extend(files)
    if config.tmdb_dir is not None:
        for rel in TMDB_FILES:
            if (config.tmdb_dir / rel).exists():
                out[T.BRONZE_TMDB].append(source_file(f"tmdb/{rel}", "tmdb", "tmdb", config.tmdb_dir / rel))
    out[T.BRONZE_EVENTS] = event_files(config.events_dir)
    return out
