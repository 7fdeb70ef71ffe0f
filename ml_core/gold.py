"""Read the lakehouse gold tables (Delta, via delta-rs) into :class:`ml_core.data.Interactions`.

Only ``lakehouse.tables`` (plain names) is imported from the lakehouse; no Spark here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from lakehouse import tables as T

from .data import DatasetError, Interactions, interactions_from_arrays

BATCH_ROWS = 4096  # user rows per record batch of the streamed read (each row carries the user's whole history)


def _dataset(root: Path, table: str, version: int | None) -> ds.Dataset:
    from deltalake import DeltaTable

    path = Path(root) / table
    if not DeltaTable.is_deltatable(str(path)):
        raise DatasetError(f"{path}: no gold table {table!r}; run `python -m lakehouse run` first")
    return DeltaTable(str(path), version=version).to_pyarrow_dataset()


def _read(root: Path, table: str, dataset: str, columns: list[str], version: int | None) -> pa.Table:
    """The dataset's rows of a (small) gold table, only ``columns``; the dataset filter is pushed into the scan."""
    return _dataset(root, table, version).to_table(columns=columns, filter=pc.field(T.DATASET) == dataset)


class _Growing:
    """A numpy buffer filled batch by batch: sized up front where the total is known, doubled where it runs out."""

    def __init__(self, dtype: type[np.generic], capacity: int) -> None:
        self.buf = np.empty(capacity, dtype)
        self.n = 0

    def append(self, values: np.ndarray) -> None:
        end = self.n + len(values)
        if end > len(self.buf):
            grown = np.empty(max(end, 2 * len(self.buf)), self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : end] = values
        self.n = end

    def finish(self) -> np.ndarray:
        return self.buf if self.n == len(self.buf) else self.buf[: self.n].copy()


def _flat(column: pa.Array) -> np.ndarray:
    values: np.ndarray = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return values


def read_sequences(
    root: Path | str,
    dataset: str,
    *,
    include_site_users: bool = True,
    version: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat (users, items, times, ratings) of one dataset in gold_user_sequences, in the table's row order.

    A streamed scan: the dataset (and site-user) filter is pushed into the Parquet scan, only the four columns
    are read, ``batch_rows`` user rows at a time, and each batch's flattened lists are copied into arrays sized
    from the ``length`` column, so the peak is about the final arrays plus one batch (not the whole table).
    int64 ids and times, float32 ratings: what :func:`interactions_from_arrays` keeps without another copy.
    """
    data = _dataset(Path(root), T.GOLD_USER_SEQUENCES, version)
    where = pc.field(T.DATASET) == dataset
    if not include_site_users:
        where = where & (pc.field(T.USER_ID) < T.EVENT_USER_OFFSET)
    capacity = 0
    if T.LENGTH in data.schema.names:  # one integer per user: a cheap first pass that sizes the buffers
        lengths = data.to_table(columns=[T.LENGTH], filter=where)[T.LENGTH]
        capacity = int(pc.sum(lengths).as_py() or 0)
    users, items = _Growing(np.int64, capacity), _Growing(np.int64, capacity)
    times, ratings = _Growing(np.int64, capacity), _Growing(np.float32, capacity)
    columns = [T.USER_ID, T.ITEM_IDS, T.TIMESTAMPS, T.RATINGS]
    # one file and one batch ahead at most: read-ahead of whole row groups is what would otherwise set the peak
    batches = data.to_batches(columns=columns, filter=where, batch_size=batch_rows, fragment_readahead=1,
                              batch_readahead=1)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        counts = pc.list_value_length(batch.column(T.ITEM_IDS)).to_numpy(zero_copy_only=False)
        users.append(np.repeat(batch.column(T.USER_ID).to_numpy(zero_copy_only=False), counts))
        items.append(_flat(batch.column(T.ITEM_IDS)))
        times.append(_flat(batch.column(T.TIMESTAMPS)))
        ratings.append(_flat(batch.column(T.RATINGS)))
    return users.finish(), items.finish(), times.finish(), ratings.finish()


def interactions_from_gold(
    root: Path | str,
    dataset: str,
    *,
    include_site_users: bool = True,
    version: int | None = None,
    features_version: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Interactions:
    """Interactions of one dataset from gold_user_sequences (+ titles, genres, years from gold_item_features).

    ``version`` pins the sequences table (Delta time travel) so a training run can be repeated.
    Site users appear with ids offset by ``tables.EVENT_USER_OFFSET``; drop them with include_site_users=False.
    The sequences are streamed in record batches of ``batch_rows`` users (:func:`read_sequences`).
    """
    users, items, times, ratings = read_sequences(
        root, dataset, include_site_users=include_site_users, version=version, batch_rows=batch_rows
    )
    if len(users) == 0:
        raise DatasetError(f"gold_user_sequences under {root} has no rows for dataset {dataset!r}")
    data = interactions_from_arrays(users, items, times, ratings, name=dataset)
    del users, items, times, ratings
    _attach_item_features(data, Path(root), dataset, features_version)
    return data


def _attach_item_features(data: Interactions, root: Path, dataset: str, version: int | None) -> None:
    features = _read(root, T.GOLD_ITEM_FEATURES, dataset, [T.MOVIE_ID, T.TITLE, T.GENRES, T.YEAR], version)
    columns = (features[c].to_pylist() for c in (T.MOVIE_ID, T.TITLE, T.GENRES, T.YEAR))
    for movie_id, title, genres, year in zip(*columns, strict=True):
        idx = data.item_vocab.index(movie_id)
        if idx < 0:
            continue
        data.item_titles[idx] = title
        data.item_genres[idx] = list(genres or [])
        if year is not None:
            data.item_years[idx] = int(year)


def item_features_from_gold(root: Path | str, dataset: str, version: int | None = None) -> dict[str, np.ndarray]:
    """Per-movie popularity and propensity columns of gold_item_features as numpy arrays keyed by column name."""
    columns = [T.MOVIE_ID, T.N_INTERACTIONS, T.POPULARITY_SHARE, T.PROPENSITY_POP, T.N_IMPRESSIONS, T.PROPENSITY_LOGGED]
    table = _read(Path(root), T.GOLD_ITEM_FEATURES, dataset, columns, version)
    return {c: table[c].to_numpy(zero_copy_only=False) for c in columns}


def gold_snapshot(root: Path | str) -> dict[str, Any]:
    """Current Delta version of every gold table, for artifact manifests."""
    from deltalake import DeltaTable

    out: dict[str, Any] = {}
    for table in T.GOLD_TABLES:
        path = Path(root) / table
        out[table] = DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else None
    return out


def interactions_from_gold_snapshot(root: Path | str, dataset: str) -> tuple[Interactions, dict[str, Any]]:
    """The dataset's interactions read at the gold tables' current versions, and those versions.

    Both tables are pinned to the versions returned, so a build that records them can be repeated exactly.
    """
    snapshot = gold_snapshot(root)
    data = interactions_from_gold(
        root, dataset, version=snapshot[T.GOLD_USER_SEQUENCES], features_version=snapshot[T.GOLD_ITEM_FEATURES]
    )
    return data, snapshot


def train_from_gold(
    root: Path | str,
    dataset: str,
    *,
    models: str = "popularity,ease",
    out: Path | str | None = None,
    seed: int = 42,
    quick: bool = False,
    threads: int = 1,
    eval_users: int | None = None,
) -> dict[str, Any]:
    """Retrain models on the gold tables, export checksummed artifacts, and return the metrics entry per model.

    Same protocol and export as ``python -m ml_core train`` (leave-one-out, tuning on validation);
    the manifests' data snapshot records the gold table versions read. ``eval_users``: validation and test on a
    seeded sample of that many users when there are more (``train --eval-users``).
    """
    import json
    import time

    import torch

    from .cli import artifacts_root, resolve_models, train_one
    from .evaluation import leave_one_out
    from .interface import FitOptions

    torch.set_num_threads(max(1, threads))
    data, snapshot = interactions_from_gold_snapshot(root, dataset)
    split = leave_one_out(data, seed=seed, eval_users=eval_users)
    target = artifacts_root(str(out) if out else None) / f"{dataset}-gold"
    target.mkdir(parents=True, exist_ok=True)
    options = FitOptions(seed=seed, progress=False, max_epochs=2 if quick else None)
    results: dict[str, Any] = {}
    for name in resolve_models(models):
        # the configuration stored by `train --tune --dataset <dataset>` (or the defaults)
        entry = train_one(name, split, options, target / name, quick=quick,
                          dataset_dir=artifacts_root(str(out) if out else None) / dataset)
        entry["gold_versions"] = snapshot
        results[name] = entry
    (target / "metrics.json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "source": "lakehouse gold",
                "gold_root": str(root),
                "gold_versions": snapshot,
                "data_snapshot": data.snapshot(),
                "models": results,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
            sort_keys=True,
            default=str,
        )
    )
    return results
