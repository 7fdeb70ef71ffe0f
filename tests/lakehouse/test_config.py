"""Inputs, guards and readers that need no Spark: source discovery, the run lock, gold reader errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse import tables as T
from lakehouse.config import LakehouseConfig, SourceError, discover_sources
from lakehouse.pipeline import PipelineBusy, root_lock, run_pipeline


def test_sources_cover_ratings_movies_links_tmdb_and_event_exports(tmp_path: Path) -> None:
    events = tmp_path / "events"
    events.mkdir()
    (events / "events-1.jsonl").write_text("{}\n")
    (events / "notes.txt").write_text("not an export")
    config = LakehouseConfig(
        root=tmp_path / "lake", datasets=("ml-100k",), tmdb_dir=Path(__file__).parent / "none", events_dir=events
    )
    found = {table: [f.source for f in files] for table, files in discover_sources(config).items()}
    assert found[T.BRONZE_RATINGS] == ["ml-100k/u.data"]
    assert found[T.BRONZE_MOVIES] == ["ml-100k/u.item", "ml-latest-small/movies.csv"]
    assert found[T.BRONZE_LINKS] == ["ml-latest-small/links.csv"]
    assert found[T.BRONZE_EVENTS] == ["events/events-1.jsonl"]


def test_a_folder_that_is_not_movielens_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=str(tmp_path)):
        discover_sources(LakehouseConfig(root=tmp_path / "lake", datasets=(str(tmp_path),)))


def test_a_second_run_on_the_same_root_is_refused_before_spark_starts(tmp_path: Path) -> None:
    with root_lock(tmp_path), pytest.raises(PipelineBusy, match="in progress"):
        run_pipeline(LakehouseConfig(root=tmp_path), layers=("bronze",))


def test_unknown_layers_and_naive_times_are_refused(tmp_path: Path) -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="unknown layer"):
        run_pipeline(LakehouseConfig(root=tmp_path), layers=("platinum",))
    with pytest.raises(ValueError, match="timezone-aware"):
        run_pipeline(LakehouseConfig(root=tmp_path), as_of=datetime(2026, 1, 1))


def test_reading_gold_before_the_pipeline_ran_says_what_to_do(tmp_path: Path) -> None:
    from ml_core.data import DatasetError
    from ml_core.gold import interactions_from_gold

    with pytest.raises(DatasetError, match="python -m lakehouse run"):
        interactions_from_gold(tmp_path, "ml-100k")


def test_spark_master_url_points_the_jobs_at_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    from lakehouse.spark import master_url

    monkeypatch.delenv("SPARK_MASTER_URL", raising=False)
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    assert master_url() == "local[*]"
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    assert master_url() == "local[2]"
    monkeypatch.setenv("SPARK_MASTER_URL", "spark://127.0.0.1:7077")
    assert master_url() == "spark://127.0.0.1:7077" and master_url("local[1]") == "local[1]"
