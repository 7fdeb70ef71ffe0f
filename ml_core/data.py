"""Interactions and vocabularies, read from MovieLens files or from plain arrays.

Everything here is plain numpy; the catalog app and the lakehouse gold tables feed
the same :class:`Interactions` through :func:`interactions_from_arrays`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
EMBEDDED_DATA = REPO_ROOT / "data" / "ml-latest-small"


class DatasetError(ValueError):
    """A dataset name or file that cannot be read; the message names it."""


@dataclass
class Vocabulary:
    """Maps raw ids (MovieLens movie/user ids) to contiguous indices and back."""

    raw_ids: np.ndarray  # int64 (n,), raw id of each index
    _index: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {int(r): i for i, r in enumerate(self.raw_ids.tolist())}

    def __len__(self) -> int:
        return len(self.raw_ids)

    def index(self, raw_id: int) -> int:
        """Index of a raw id, or -1 when unknown."""
        return self._index.get(int(raw_id), -1)

    def indices(self, raw_ids: np.ndarray | list[int]) -> np.ndarray:
        return np.fromiter((self._index.get(int(r), -1) for r in raw_ids), dtype=np.int64, count=len(raw_ids))

    def to_json(self) -> list[int]:
        return [int(r) for r in self.raw_ids.tolist()]

    @classmethod
    def from_json(cls, raw: list[int]) -> Vocabulary:
        return cls(np.asarray(raw, dtype=np.int64))


@dataclass
class Interactions:
    """Implicit-feedback log: one row per (user, item, time), indices into the vocabularies."""

    users: np.ndarray  # int64 (n,)
    items: np.ndarray  # int64 (n,)
    times: np.ndarray  # int64 (n,) unix seconds
    ratings: np.ndarray  # float32 (n,) explicit value where known, else 1
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    name: str = "custom"
    item_titles: dict[int, str] = field(default_factory=dict)  # item index -> title
    item_genres: dict[int, list[str]] = field(default_factory=dict)  # item index -> genres
    item_years: dict[int, int] = field(default_factory=dict)  # item index -> release year

    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> Interactions:
        """Rows where mask is true, same vocabularies and metadata."""
        return Interactions(
            self.users[mask], self.items[mask], self.times[mask], self.ratings[mask],
            self.user_vocab, self.item_vocab, self.name, self.item_titles, self.item_genres, self.item_years,
        )

    def sequences(self) -> list[np.ndarray]:
        """Per user (by index), item indices in chronological order (stable on ties)."""
        order = np.lexsort((np.arange(len(self)), self.times, self.users))
        users, items = self.users[order], self.items[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def time_sequences(self) -> list[np.ndarray]:
        """Per user, the unix times matching :meth:`sequences`."""
        order = np.lexsort((np.arange(len(self)), self.times, self.users))
        users, times = self.users[order], self.times[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [times[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def matrix(self) -> scipy.sparse.csr_matrix:  # noqa: F821
        """Binary user x item CSR matrix (float32)."""
        from scipy import sparse

        m = sparse.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        m.data[:] = 1.0
        return m

    def snapshot(self) -> dict:
        """A data fingerprint for manifests: name, sizes and a SHA-256 of the rows."""
        h = hashlib.sha256()
        for arr in (self.users, self.items, self.times):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return {"name": self.name, "n_users": self.n_users, "n_items": self.n_items,
                "n_interactions": len(self), "sha256": h.hexdigest()}


def interactions_from_arrays(
    user_raw: np.ndarray, item_raw: np.ndarray, times: np.ndarray, ratings: np.ndarray | None = None,
    *, name: str = "custom", item_raw_vocab: np.ndarray | None = None,
) -> Interactions:
    """Build Interactions from raw ids; vocabularies are sorted raw ids."""
    user_raw = np.asarray(user_raw, dtype=np.int64)
    item_raw = np.asarray(item_raw, dtype=np.int64)
    user_vocab = Vocabulary(np.unique(user_raw))
    item_vocab = Vocabulary(np.unique(item_raw) if item_raw_vocab is None else np.asarray(item_raw_vocab, np.int64))
    users = np.searchsorted(user_vocab.raw_ids, user_raw)
    items = item_vocab.indices(item_raw) if item_raw_vocab is not None else np.searchsorted(item_vocab.raw_ids, item_raw)
    r = np.ones(len(users), np.float32) if ratings is None else np.asarray(ratings, dtype=np.float32)
    return Interactions(users.astype(np.int64), items.astype(np.int64), np.asarray(times, dtype=np.int64), r,
                        user_vocab, item_vocab, name)


def _read_ml100k(folder: Path) -> Interactions:
    raw = np.loadtxt(folder / "u.data", dtype=np.int64)
    data = interactions_from_arrays(raw[:, 0], raw[:, 1], raw[:, 3], raw[:, 2], name="ml-100k")
    genre_names = [line.split("|")[0] for line in (folder / "u.genre").read_text("latin-1").splitlines() if line]
    with open(folder / "u.item", encoding="latin-1") as fh:
        for row in csv.reader(fh, delimiter="|"):
            idx = data.item_vocab.index(int(row[0]))
            if idx < 0:
                continue
            data.item_titles[idx] = row[1]
            data.item_genres[idx] = [g for g, flag in zip(genre_names, row[5:], strict=False) if flag == "1" and g != "unknown"]
            if row[2][-4:].isdigit():
                data.item_years[idx] = int(row[2][-4:])
    return data


def _read_ml_latest(folder: Path, name: str) -> Interactions:
    import pandas as pd

    ratings = pd.read_csv(folder / "ratings.csv")
    data = interactions_from_arrays(ratings.userId.values, ratings.movieId.values, ratings.timestamp.values,
                                    ratings.rating.values, name=name)
    movies = pd.read_csv(folder / "movies.csv")
    for mid, title, genres in movies[["movieId", "title", "genres"]].itertuples(index=False):
        idx = data.item_vocab.index(int(mid))
        if idx < 0:
            continue
        data.item_titles[idx] = title
        data.item_genres[idx] = [] if genres == "(no genres listed)" else genres.split("|")
        year = title.strip()[-5:-1]
        if year.isdigit():
            data.item_years[idx] = int(year)
    return data


DATASETS = {
    "ml-100k": lambda: _read_ml100k(SHARED_DATA / "ml-100k"),
    "ml-latest-small": lambda: _read_ml_latest(
        EMBEDDED_DATA if (EMBEDDED_DATA / "ratings.csv").exists() else SHARED_DATA / "ml-latest-small",
        "ml-latest-small"),
}


def load_dataset(name_or_path: str) -> Interactions:
    """A named dataset (``ml-100k``, ``ml-latest-small``) or a MovieLens folder path."""
    if name_or_path in DATASETS:
        return DATASETS[name_or_path]()
    path = Path(name_or_path)
    if (path / "u.data").exists():
        return _read_ml100k(path)
    if (path / "ratings.csv").exists():
        return _read_ml_latest(path, path.name)
    raise DatasetError(f"unknown dataset {name_or_path!r}: expected one of {sorted(DATASETS)} "
                       "or a folder with u.data or ratings.csv")


def save_vocab(directory: Path, data_or_vocab: Interactions | Vocabulary) -> None:
    """Write vocab.json (item raw ids; user raw ids when given Interactions)."""
    if isinstance(data_or_vocab, Interactions):
        payload = {"items": data_or_vocab.item_vocab.to_json(), "users": data_or_vocab.user_vocab.to_json()}
    else:
        payload = {"items": data_or_vocab.to_json(), "users": []}
    (directory / "vocab.json").write_text(json.dumps(payload))
