"""Read the lakehouse gold tables (Delta, via delta-rs) into :class:`ml_core.data.Interactions`.

Only ``lakehouse.tables`` (plain names) is imported from the lakehouse; no Spark here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse import tables as T

from .data import DatasetError, Interactions, interactions_from_arrays


def _read(root: Path, table: str, dataset: str, columns: list[str], version: int | None) -> pa.Table:
    from deltalake import DeltaTable

    path = Path(root) / table
    if not DeltaTable.is_deltatable(str(path)):
        raise DatasetError(f"{path}: no gold table {table!r}; run `python -m lakehouse run` first")
    data = DeltaTable(str(path), version=version).to_pyarrow_table(columns=[T.DATASET, *columns])
    return data.filter(pc.equal(data[T.DATASET], dataset))


def interactions_from_gold(
    root: Path | str,
    dataset: str,
    *,
    include_site_users: bool = True,
    version: int | None = None,
    features_version: int | None = None,
) -> Interactions:
    """Interactions of one dataset from gold_user_sequences (+ titles, genres, years from gold_item_features).

    ``version`` pins the sequences table (Delta time travel) so a training run can be repeated.
    Site users appear with ids offset by ``tables.EVENT_USER_OFFSET``; drop them with include_site_users=False.
    """
    seqs = _read(Path(root), T.GOLD_USER_SEQUENCES, dataset, [T.USER_ID, T.ITEM_IDS, T.TIMESTAMPS, T.RATINGS], version)
    if not include_site_users:
        seqs = seqs.filter(pc.less(seqs[T.USER_ID], T.EVENT_USER_OFFSET))
    if seqs.num_rows == 0:
        raise DatasetError(f"gold_user_sequences under {root} has no rows for dataset {dataset!r}")
    lengths = pc.list_value_length(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    users = np.repeat(seqs[T.USER_ID].to_numpy(), lengths)
    items = pc.list_flatten(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    times = pc.list_flatten(seqs[T.TIMESTAMPS]).to_numpy(zero_copy_only=False)
    ratings = pc.list_flatten(seqs[T.RATINGS]).to_numpy(zero_copy_only=False)
    data = interactions_from_arrays(users, items, times, ratings, name=dataset)
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
) -> dict[str, Any]:
    """Retrain models on the gold tables, export checksummed artifacts, and return the metrics entry per model.

    Same protocol and export as ``python -m ml_core train`` (leave-one-out, tuning on validation);
    the manifests' data snapshot records the gold table versions read.
    """
    import json
    import time

    import torch

    from .cli import artifacts_root, resolve_models, train_one
    from .evaluation import leave_one_out
    from .interface import FitOptions

    torch.set_num_threads(max(1, threads))
    data, snapshot = interactions_from_gold_snapshot(root, dataset)
    split = leave_one_out(data, seed=seed)
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
