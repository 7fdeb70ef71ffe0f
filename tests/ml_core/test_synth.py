"""The synthetic MovieLens-shaped generator (issue 17): layout, determinism, shape, and something to learn."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ml_core import synth
from ml_core.data import load_dataset

SPEC = synth.SynthSpec(users=300, items=800, ratings=24_000, seed=3, chunk_users=128)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth.write_dataset(SPEC, out)
    return out


def test_writes_a_movielens_folder_that_loads_like_a_real_one(folder: Path) -> None:
    assert {p.name for p in folder.iterdir()} >= {"ratings.csv", "movies.csv", "links.csv", "SYNTHETIC.md"}
    data = load_dataset(str(folder))
    assert data.n_users == SPEC.users and data.n_items <= SPEC.items
    assert abs(len(data) - SPEC.ratings) <= 0.02 * SPEC.ratings  # repeats that find no new title are dropped
    pairs = data.users.astype(np.int64) * data.n_items + data.items
    assert len(np.unique(pairs)) == len(data)  # no member rates a movie twice
    lengths = np.bincount(data.users)
    assert lengths.min() >= SPEC.min_per_user * 0.9
    assert set(np.unique(data.ratings).tolist()) <= {x / 2 for x in range(1, 11)}
    assert any(data.item_genres[i] for i in range(data.n_items)) and data.item_years[0] > 1899
    header = (folder / "ratings.csv").read_text().splitlines()[0]
    assert header == "userId,movieId,rating,timestamp"  # bare, as MovieLens writes it


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, folder: Path) -> None:
    def digest(path: Path) -> str:
        return hashlib.sha256((path / "ratings.csv").read_bytes()).hexdigest()

    synth.write_dataset(SPEC, tmp_path / "again")
    assert digest(tmp_path / "again") == digest(folder)
    synth.write_dataset(synth.SynthSpec(users=300, items=800, ratings=24_000, seed=4, chunk_users=128), tmp_path / "b")
    assert digest(tmp_path / "b") != digest(folder)


def test_the_shape_is_movielens_like(folder: Path) -> None:
    data = load_dataset(str(folder))
    shape = synth.shape_profile(data.users, data.items, data.ratings, data.times)
    assert shape["item_gini"] > 0.35  # a popularity head and a long tail
    assert shape["user_log_sd"] > 0.5  # activity spreads over orders of magnitude
    assert 0.1 < shape["half_star_share"] < 0.5 and 3.0 < shape["rating_mean"] < 4.0
    assert shape["same_second_share"] > 0.05  # sittings: some ratings share a second


def test_tastes_give_models_something_to_learn(folder: Path) -> None:
    """Co-rated items (EASE) predict a member's held-out movie better than popularity does."""
    data = load_dataset(str(folder))
    order = data.chronological_order()
    users, items = data.users[order], data.items[order]
    last = np.r_[users[1:] != users[:-1], True]
    train = np.zeros((data.n_users, data.n_items))
    train[users[~last], items[~last]] = 1.0
    held = dict(zip(users[last].tolist(), items[last].tolist(), strict=True))
    popularity = train.sum(axis=0)
    inverse = np.linalg.inv(train.T @ train + 50.0 * np.eye(data.n_items))  # EASE (Steck 2019), lambda 50
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    ease_scores = train @ weights
    hits = {"popularity": 0, "ease": 0}
    for user, item in held.items():
        for name, scores in (("popularity", popularity.copy()), ("ease", ease_scores[user].copy())):
            scores[train[user] > 0] = -np.inf
            hits[name] += int(item in np.argsort(-scores)[:20])
    assert hits["ease"] > 1.2 * hits["popularity"], hits


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"users": 10, "items": 10, "ratings": 5}, "ratings >= users"),
    ({"users": 10, "items": 10, "ratings": 90}, "at most half full"),
])
def test_impossible_sizes_are_refused_with_a_reason(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        synth.SynthSpec(**kwargs)


def test_scale_presets_and_explicit_sizes() -> None:
    spec = synth.spec_for(scale="25m", users=None, items=60_000, ratings=None)
    assert (spec.users, spec.items, spec.ratings) == (162_541, 60_000, 25_000_095)
    with pytest.raises(ValueError, match="--scale"):
        synth.spec_for(scale=None, users=5, items=None, ratings=None)


def test_a_movielens_dat_folder_loads(tmp_path: Path) -> None:
    """ml-1m / ml-10m layout: '::'-separated ratings.dat and movies.dat (latin-1, titles with colons)."""
    (tmp_path / "ratings.dat").write_bytes(b"1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n")
    (tmp_path / "movies.dat").write_bytes("10::Star Wars: Episode IV (1977)::Action|Sci-Fi\n"
                                          "20::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    data = load_dataset(str(tmp_path))
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)
    idx = data.item_vocab.index(10)
    assert data.item_titles[idx] == "Star Wars: Episode IV (1977)" and data.item_genres[idx] == ["Action", "Sci-Fi"]
    assert data.item_years[idx] == 1977 and data.item_titles[data.item_vocab.index(20)] == "Amélie (2001)"
    assert sorted(data.ratings.tolist()) == [3.0, 4.0, 5.0]
