"""Any dataset, no code change: logs without timestamps, metadata or rating values, and short histories.

Each shape is a small generated log written in one of the layouts `load_dataset` reads. The unmarked
test trains every registered model (quick configuration) on the shape that lacks everything at once
(order only, implicit, string ids, no item file, median 5 events per user); the `slow` sweep trains
every model on each shape alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ml_core.cli import main
from ml_core.data import DatasetError, load_dataset, missing_metadata
from ml_core.evaluation import leave_one_out
from ml_core.registry import MODELS

N_USERS = 90
N_GROUPS = 4
ITEMS_PER_GROUP = 10
T0 = 1_300_000_000


def _histories(median: int, seed: int = 0) -> list[list[int]]:
    """Per user, distinct items mostly from the user's group (so there is something to learn)."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(N_USERS):
        n = int(np.clip(rng.poisson(median), 2, ITEMS_PER_GROUP))
        own = rng.choice(ITEMS_PER_GROUP, n, replace=False) + (u % N_GROUPS) * ITEMS_PER_GROUP
        out.append([int(i) + 1 for i in own])
    return out


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def order_only(root: Path) -> Path:
    """Everything missing: no timestamp or rating column, string ids, no item file, median 5 events."""
    rows = [f"member-{u:03d},sku-{i:03d}" for u, hist in enumerate(_histories(5)) for i in hist]
    return _write(root / "order-only" / "interactions.csv", "user_id,item_id", rows).parent


def movielens_without_movies(root: Path) -> Path:
    """A MovieLens ratings.csv with timestamps and ratings but no movies.csv (no titles, genres, years)."""
    rows = [f"{u + 1},{i},{1 + (u + i) % 5}.0,{T0 + 3600 * k}" for u, hist in enumerate(_histories(8))
            for k, i in enumerate(hist)]
    return _write(root / "ml-no-movies" / "ratings.csv", "userId,movieId,rating,timestamp", rows).parent


def implicit_with_dates(root: Path) -> Path:
    """Implicit events (no rating column) with ISO dates, and an items.csv with genres and years."""
    rows = [f"{u + 1},{i},2021-03-{1 + k:02d}T12:00:00Z" for u, hist in enumerate(_histories(8))
            for k, i in enumerate(hist)]
    folder = _write(root / "implicit-dates" / "interactions.csv", "user_id,item_id,timestamp", rows).parent
    items = [f"{i},Item {i},{'Drama|War' if i % 2 else 'Comedy'},{1990 + i % 20}"
             for i in range(1, N_GROUPS * ITEMS_PER_GROUP + 1)]
    _write(folder / "items.csv", "item_id,title,genres,year", items)
    return folder


def short_histories(root: Path) -> Path:
    """Explicit ratings and timestamps but median 5 events per user (many users under 3 stay in train)."""
    rows = [f"{u + 1},{i},{1 + (u * i) % 5},{T0 + 60 * k}" for u, hist in enumerate(_histories(5))
            for k, i in enumerate(hist)]
    return _write(root / "short.csv", "user_id,item_id,rating,timestamp", rows)


SHAPES = {"order_only": order_only, "movielens_without_movies": movielens_without_movies,
          "implicit_with_dates": implicit_with_dates, "short_histories": short_histories}


def test_an_order_only_log_keeps_the_file_order_and_says_what_it_lacks(tmp_path):
    data = load_dataset(str(order_only(tmp_path)))
    assert not data.has_timestamps and not data.has_ratings
    assert missing_metadata(data) == ["timestamps", "ratings", "genres", "years"]
    assert data.item_titles[0] == "sku-001"  # string ids are numbered in sorted order, the label kept as title
    split = leave_one_out(data)
    hist = _histories(5)[7]
    user = data.user_vocab.index(8)  # member-007
    titles = [data.item_titles[i] for i in split.train_seqs[user]]
    assert titles == [f"sku-{i:03d}" for i in hist[:-2]]
    assert data.item_titles[split.test_item[user]] == f"sku-{hist[-1]:03d}"  # the last row of the user is the test
    assert not split.test_tied.any()  # positions never tie


def test_dates_ratings_and_item_files_are_read_when_present(tmp_path):
    dated = load_dataset(str(implicit_with_dates(tmp_path)))
    assert dated.has_timestamps and not dated.has_ratings and missing_metadata(dated) == ["ratings"]
    assert dated.times.min() == 1614600000  # 2021-03-01T12:00:00Z
    assert dated.item_genres[dated.item_vocab.index(3)] == ["Drama", "War"]
    assert dated.item_years[dated.item_vocab.index(3)] == 1993
    bare = load_dataset(str(movielens_without_movies(tmp_path)))
    assert bare.has_ratings and missing_metadata(bare) == ["genres", "years"] and not bare.item_titles
    short = load_dataset(str(short_histories(tmp_path)))
    assert short.name == "short" and np.median(np.bincount(short.users)) == 5


def test_a_csv_without_user_and_item_columns_or_with_missing_times_is_refused(tmp_path):
    path = _write(tmp_path / "bad.csv", "who,what", ["1,2"])
    with pytest.raises(DatasetError, match="user_id and item_id"):
        load_dataset(str(path))
    assert main(["train", "--dataset", str(path), "--out", str(tmp_path), "--docs", str(tmp_path)]) == 2
    gaps = _write(tmp_path / "gaps.csv", "user_id,item_id,timestamp", ["1,2,100", "1,3,"])
    with pytest.raises(DatasetError, match="1 rows without a timestamp"):
        load_dataset(str(gaps))


def _train_all(dataset: Path, tmp_path: Path) -> tuple[dict, str]:
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    code = main(["train", "--dataset", str(dataset), "--models", "all", "--quick", "--no-progress",
                 "--out", str(out), "--docs", str(docs)])
    assert code == 0
    (run_file,) = out.glob("*/metrics.json")
    return json.loads(run_file.read_text()), (docs / "MODEL_CARDS.md").read_text()


def _assert_every_model_ran(run: dict) -> None:
    assert set(run["models"]) == set(MODELS)
    for name, entry in run["models"].items():
        assert math.isfinite(entry["test"]["ndcg@10"]), name
        assert entry["test"]["n_users"] > 0 and entry["test"]["n_tied_users"] >= 0


def test_every_model_trains_on_a_log_with_nothing_but_an_order(tmp_path):
    run, cards = _train_all(order_only(tmp_path), tmp_path)
    _assert_every_model_ran(run)
    profile = run["protocol"]["dataset_profile"]
    assert profile["missing"] == ["timestamps", "ratings", "genres", "years"] and profile["median_history"] == 5
    assert any(note.startswith("kan: genre features unavailable") for note in run["models"]["kan"]["fallbacks"])
    assert any(note.startswith("neural_ode: no timestamps") for note in run["models"]["neural_ode"]["fallbacks"])
    assert run["models"]["ease"]["fallbacks"] == []
    assert "kan: genre features unavailable" in cards and "no timestamps: each user's events are in file order" in cards
    assert "short histories: median 5" in cards


@pytest.mark.slow
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_model_trains_on_each_shape(shape, tmp_path):
    run, cards = _train_all(SHAPES[shape](tmp_path), tmp_path)
    _assert_every_model_ran(run)
    missing = run["protocol"]["dataset_profile"]["missing"]
    kan_notes = run["models"]["kan"]["fallbacks"]
    assert ("genres" in missing) == any("genre features unavailable" in n for n in kan_notes)
    assert ("timestamps" in missing) == bool(run["models"]["neural_ode"]["fallbacks"])
    assert all(note in cards for note in kan_notes)
