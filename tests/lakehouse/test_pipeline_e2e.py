"""End to end on ml-100k: gold tables train exactly like the files they came from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from lakehouse import tables as T
from lakehouse.config import LakehouseConfig
from lakehouse.delta import DeltaRsBackend
from lakehouse.pipeline import run_pipeline

pytestmark = pytest.mark.spark
AS_OF = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def gold_root(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full run over ml-100k plus one exported event file (two site users on ml-100k movies)."""
    base = tmp_path_factory.mktemp("e2e")
    events = base / "events"
    events.mkdir()
    rows = [
        {
            "event_id": f"e{i}",
            "user_id": 1 + i % 2,
            "movie_id": 1 + i,
            "kind": "click",
            "value": None,
            "created_at": f"2026-10-0{1 + i}T08:00:00+00:00",
            "propensity": None,
        }
        for i in range(6)
    ]
    (events / "events-1.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = LakehouseConfig(
        root=base / "lake",
        datasets=("ml-100k",),
        reference_dataset="ml-100k",
        tmdb_dir=None,
        events_dir=events,
        events_dataset="ml-100k",
    )
    result = run_pipeline(config, spark=spark, as_of=AS_OF)
    assert result.rows(T.BRONZE_RATINGS) == 100_000 and result.rows(T.QUARANTINE) == 0
    return config.root


def test_gold_interactions_equal_the_files(gold_root: Path) -> None:
    from ml_core.data import load_dataset
    from ml_core.gold import interactions_from_gold

    gold = interactions_from_gold(gold_root, "ml-100k", include_site_users=False)
    files = load_dataset("ml-100k")
    assert np.array_equal(gold.user_vocab.raw_ids, files.user_vocab.raw_ids)
    assert np.array_equal(gold.item_vocab.raw_ids, files.item_vocab.raw_ids)
    assert all(np.array_equal(a, b) for a, b in zip(gold.sequences(), files.sequences(), strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(gold.time_sequences(), files.time_sequences(), strict=True))
    key = np.lexsort((files.items, files.users))
    gkey = np.lexsort((gold.items, gold.users))
    assert np.array_equal(gold.ratings[gkey], files.ratings[key])
    assert {i: t.strip() for i, t in files.item_titles.items()} == gold.item_titles
    assert (gold.item_genres, gold.item_years) == (files.item_genres, files.item_years)


def test_training_on_gold_matches_training_on_the_files(gold_root: Path) -> None:
    from ml_core.data import load_dataset
    from ml_core.evaluation import evaluate, leave_one_out
    from ml_core.gold import interactions_from_gold
    from ml_core.interface import FitOptions
    from ml_core.models.ease import EASE, EASEConfig
    from ml_core.models.popularity import Popularity

    def metrics(data) -> dict[str, dict[str, float]]:  # noqa: ANN001
        split = leave_one_out(data, seed=0)
        out = {}
        for model in (Popularity(), EASE(EASEConfig(reg=250.0))):
            model.fit(split.train, FitOptions(seed=0, progress=False))
            out[model.name] = evaluate(model, split, "test", full_only=True)
        return out

    from_gold = metrics(interactions_from_gold(gold_root, "ml-100k", include_site_users=False))
    from_files = metrics(load_dataset("ml-100k"))
    assert from_gold == from_files
    assert from_gold["ease"]["ndcg@10"] > from_gold["popularity"]["ndcg@10"]


def test_site_users_join_with_an_offset_and_other_gold_tables_are_filled(spark, gold_root: Path) -> None:
    from ml_core.gold import interactions_from_gold, item_features_from_gold

    data = interactions_from_gold(gold_root, "ml-100k")
    site = data.user_vocab.raw_ids[data.user_vocab.raw_ids >= T.EVENT_USER_OFFSET]
    assert site.tolist() == [T.EVENT_USER_OFFSET + 1, T.EVENT_USER_OFFSET + 2] and len(data) == 100_006
    features = item_features_from_gold(gold_root, "ml-100k")
    assert len(features[T.MOVIE_ID]) == 1682 and features[T.N_INTERACTIONS].sum() == 100_006
    co = DeltaRsBackend(gold_root).read(spark, T.GOLD_ITEM_COOCCURRENCE)
    assert co.count() > 10_000 and co.where(f"{T.ITEM_A} >= {T.ITEM_B}").count() == 0


def test_a_rerun_ingests_nothing_new(spark, gold_root: Path) -> None:
    config = LakehouseConfig(
        root=gold_root,
        datasets=("ml-100k",),
        reference_dataset="ml-100k",
        tmdb_dir=None,
        events_dir=gold_root.parent / "events",
        events_dataset="ml-100k",
    )
    again = run_pipeline(config, spark=spark, layers=("bronze",), as_of=AS_OF)
    assert sum(again.rows(t) for t in T.BRONZE_TABLES) == 0
    assert DeltaRsBackend(gold_root).version(T.BRONZE_RATINGS) == 0
