"""The streamed gold reader (record batches, filters pushed into the scan) gives exactly what the whole-table read gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakehouse import tables as T
from ml_core.data import DatasetError, Interactions, interactions_from_arrays

DATASETS = ("ml-100k", "ml-latest-small", "other")


def _sequences(rng: np.random.Generator, dataset: str, users: np.ndarray, *, length: bool = True) -> pa.Table:
    lengths = rng.integers(1, 9, len(users))
    items = [rng.integers(1, 60, n).tolist() for n in lengths]
    times = [np.sort(rng.integers(10**9, 10**9 + 10**5, n)).tolist() for n in lengths]
    ratings = [(rng.integers(1, 11, n) / 2).tolist() for n in lengths]
    columns = {
        T.DATASET: [dataset] * len(users),
        T.USER_ID: pa.array(users, pa.int64()),
        T.ITEM_IDS: pa.array(items, pa.list_(pa.int64())),
        T.TIMESTAMPS: pa.array(times, pa.list_(pa.int64())),
        T.RATINGS: pa.array(ratings, pa.list_(pa.float32())),  # Spark's array<float>
    }
    if length:
        columns[T.LENGTH] = pa.array(lengths, pa.int32())
    return pa.table(columns)


def _write(root: Path, *, length: bool = True) -> None:
    """Several appends (so several files), the datasets interleaved, site users (offset ids) in two of them."""
    from deltalake import write_deltalake

    rng = np.random.default_rng(7)
    for part in range(3):
        for dataset in DATASETS:
            users = np.arange(1 + part * 40, 41 + part * 40)
            if dataset != "other":
                users = np.r_[users, T.EVENT_USER_OFFSET + np.arange(part * 3, part * 3 + 3)]
            write_deltalake(str(root / T.GOLD_USER_SEQUENCES), _sequences(rng, dataset, users, length=length),
                            mode="append")
    movies = np.arange(1, 60)
    for dataset in DATASETS:
        write_deltalake(
            str(root / T.GOLD_ITEM_FEATURES),
            pa.table({
                T.DATASET: [dataset] * len(movies),
                T.MOVIE_ID: pa.array(movies, pa.int64()),
                T.TITLE: [f"{dataset} {m}" for m in movies],
                T.GENRES: pa.array([["Drama"] if m % 2 else [] for m in movies], pa.list_(pa.string())),
                T.YEAR: pa.array([1990 + m if m % 3 else None for m in movies], pa.int64()),
            }),
            mode="append",
        )


def _whole_table(root: Path, dataset: str, *, include_site_users: bool = True, version: int | None = None
                 ) -> Interactions:
    """The previous reader: the whole table through to_pyarrow_table, filtered and flattened afterwards."""
    from deltalake import DeltaTable

    columns = [T.DATASET, T.USER_ID, T.ITEM_IDS, T.TIMESTAMPS, T.RATINGS]
    seqs = DeltaTable(str(root / T.GOLD_USER_SEQUENCES), version=version).to_pyarrow_table(columns=columns)
    seqs = seqs.filter(pc.equal(seqs[T.DATASET], dataset))
    if not include_site_users:
        seqs = seqs.filter(pc.less(seqs[T.USER_ID], T.EVENT_USER_OFFSET))
    lengths = pc.list_value_length(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    users = np.repeat(seqs[T.USER_ID].to_numpy(), lengths)
    items = pc.list_flatten(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    times = pc.list_flatten(seqs[T.TIMESTAMPS]).to_numpy(zero_copy_only=False)
    ratings = pc.list_flatten(seqs[T.RATINGS]).to_numpy(zero_copy_only=False)
    return interactions_from_arrays(users, items, times, ratings, name=dataset)


def _assert_same(new: Interactions, old: Interactions) -> None:
    for name in ("users", "items", "times", "ratings", "tiebreak"):
        a, b = getattr(new, name), getattr(old, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert np.array_equal(new.user_vocab.raw_ids, old.user_vocab.raw_ids)
    assert np.array_equal(new.item_vocab.raw_ids, old.item_vocab.raw_ids)
    assert (new.name, new.has_timestamps, new.has_ratings) == (old.name, old.has_timestamps, old.has_ratings)


@pytest.mark.parametrize("length", [True, False], ids=["sized-by-length", "grown"])
@pytest.mark.parametrize("batch_rows", [1, 7, 4096])
def test_streamed_read_equals_the_whole_table_read(tmp_path: Path, batch_rows: int, length: bool) -> None:
    from ml_core.gold import interactions_from_gold

    _write(tmp_path, length=length)
    for dataset in DATASETS:
        for site in (True, False):
            new = interactions_from_gold(tmp_path, dataset, include_site_users=site, batch_rows=batch_rows)
            _assert_same(new, _whole_table(tmp_path, dataset, include_site_users=site))
            assert site == bool((new.user_vocab.raw_ids >= T.EVENT_USER_OFFSET).any()) or dataset == "other"
            assert new.item_titles[0] == f"{dataset} 1" and new.item_genres[0] == ["Drama"]
            assert new.item_years[0] == 1991 and 2 not in new.item_years  # movie 3 has no year


def test_streamed_read_pins_the_version(tmp_path: Path) -> None:
    from ml_core.gold import interactions_from_gold

    _write(tmp_path)  # versions 0..8 of the sequences table, three datasets per part
    for version in (0, 4):
        new = interactions_from_gold(tmp_path, "ml-100k", version=version, batch_rows=5)
        _assert_same(new, _whole_table(tmp_path, "ml-100k", version=version))
    assert len(interactions_from_gold(tmp_path, "ml-100k", version=0)) < len(interactions_from_gold(tmp_path, "ml-100k"))


def test_streamed_read_errors(tmp_path: Path) -> None:
    from ml_core.gold import interactions_from_gold

    with pytest.raises(DatasetError, match="python -m lakehouse run"):
        interactions_from_gold(tmp_path, "ml-100k")
    _write(tmp_path)
    with pytest.raises(DatasetError, match="no rows for dataset 'missing'"):
        interactions_from_gold(tmp_path, "missing")


def test_the_in_place_tie_break_keys_are_the_published_values() -> None:
    """tiebreak_keys hashes in place (no full-size copies); the keys are the ones the out-of-place version gave."""
    from ml_core.data import tiebreak_keys

    users = np.array([1, 2, -3, 1_000_000_007, 2**62])
    items = np.array([10, -20, 30, 40, 2**63 - 1])
    expected = [7842029640539620169, 528074823065915417, 2656662212247516329, 11762598946033141042,
                6837573360940798953]
    assert tiebreak_keys("ml-100k", users, items).tolist() == expected
    assert tiebreak_keys("ml-100k", users.tolist(), items.tolist()).tolist() == expected
    assert users.tolist() == [1, 2, -3, 1_000_000_007, 2**62]  # the inputs are left alone
