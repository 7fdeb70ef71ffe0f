"""Interactions and vocabularies, read from MovieLens files, a plain interaction CSV or arrays.

Everything here is plain numpy; the catalog app and the lakehouse gold tables feed
the same :class:`Interactions` through :func:`interactions_from_arrays`.

Event order. A user's events are ordered by time, and events with the *same* time by a
tie-break key (:func:`tiebreak_keys`): a 64-bit hash of (dataset name, raw user id, raw item id).
Equal timestamps carry no order, so the key is pseudo-random, fixed per dataset, and depends on
neither the file order nor the order of the ids (MovieLens files are sorted by user, then item id;
a stable sort would make the held-out item of every tie the higher id, which a model can learn).
:meth:`Interactions.chronological_order` is the one place the order is derived; the split, the
training sequences and every temporal feature use it.

Layouts read by :func:`load_dataset` (a name in ``DATASETS`` or a path):

* a folder with ``u.data`` (ml-100k; ``u.item``/``u.genre`` optional);
* a folder with a MovieLens ``ratings.csv`` (``userId,movieId,rating,timestamp``; ``movies.csv`` optional);
* a folder with ``interactions.csv``, or any ``.csv`` file, in the generic layout (:func:`read_interaction_csv`):
  a header row, ``user_id,item_id`` required, ``rating`` and ``timestamp`` optional, plus an optional
  ``items.csv`` beside it (``item_id[,title][,genres][,year]``, genres ``|``-separated) and an optional
  ``users.csv`` (``user_id[,age][,gender][,occupation]``: member groups, see :mod:`ml_core.demographics`).

Missing parts fall back: no timestamps -> each user's events are ordered as in the file and ``times`` are
positions (``has_timestamps`` False); no rating column -> implicit events, every row a positive
(``has_ratings`` False); no item file -> no titles, genres or years. :func:`missing_metadata` lists what
a dataset lacks so that models and cards can say which features fell back.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from scipy import sparse

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


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic), in place: ``z`` is overwritten and returned.

    In place so that a 25-million-row log needs one shift temporary beside its keys, not four full copies.
    """
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def tiebreak_keys(name: str, user_raw: np.ndarray, item_raw: np.ndarray) -> np.ndarray:
    """uint64 key per row ordering one user's equal-time events: splitmix64 of (dataset name, user, item).

    Deterministic and fixed per dataset (the name seeds it), the same whatever the file order, and
    unrelated to the order of the ids, so which of two tied events is held out is a coin flip per pair.
    """
    seed = np.uint64(int.from_bytes(hashlib.sha256(f"apex-tiebreak:{name}".encode()).digest()[:8], "little"))
    # the ids' bits as uint64 (a view, as int64 -> uint64 wraps the same way), then one fresh array of keys
    users = np.asarray(user_raw, np.int64).view(np.uint64)
    items = np.asarray(item_raw, np.int64).view(np.uint64)
    keys = _splitmix64(seed ^ users)
    keys ^= items
    return _splitmix64(keys)


def positions_as_times(user_raw: np.ndarray) -> np.ndarray:
    """Each row's position among its user's rows in file order (0, 1, ...): the clock of an order-only log."""
    users = np.asarray(user_raw)
    order = np.argsort(users, kind="stable")
    starts = np.r_[0, np.flatnonzero(users[order][1:] != users[order][:-1]) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    pos = np.empty(len(users), np.int64)
    pos[order] = np.arange(len(users)) - np.repeat(starts, counts)
    return pos


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
    tiebreak: np.ndarray | None = field(default=None, repr=False)  # uint64 (n,) order of equal-time events
    has_timestamps: bool = True  # False: `times` are positions in each user's file order (no clock)
    has_ratings: bool = True  # False: implicit events only, `ratings` are all 1
    # member groups where the dataset has them (ml_core.demographics): attribute -> {user index -> label}
    user_attributes: dict[str, dict[int, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tiebreak is None:  # built directly from indices: hash the raw ids behind them
            self.tiebreak = tiebreak_keys(self.name, self.user_vocab.raw_ids[self.users],
                                          self.item_vocab.raw_ids[self.items])

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
        assert self.tiebreak is not None
        return Interactions(
            self.users[mask], self.items[mask], self.times[mask], self.ratings[mask],
            self.user_vocab, self.item_vocab, self.name, self.item_titles, self.item_genres, self.item_years,
            tiebreak=self.tiebreak[mask], has_timestamps=self.has_timestamps, has_ratings=self.has_ratings,
            user_attributes=self.user_attributes,
        )

    def chronological_order(self) -> np.ndarray:
        """Row numbers grouped by user index, each user's rows by time, equal times by the tie-break key."""
        # the row number only separates exact duplicates (same user, item and time): no order to leak
        assert self.tiebreak is not None  # set in __post_init__
        return np.lexsort((np.arange(len(self)), self.tiebreak, self.times, self.users))

    def user_bounds(self, order: np.ndarray) -> np.ndarray:
        """(n_users + 1,) offsets: user u's rows are order[bounds[u] : bounds[u + 1]]."""
        return np.searchsorted(self.users[order], np.arange(self.n_users + 1))

    def sequences(self) -> list[np.ndarray]:
        """Per user (by index), item indices in chronological order (ties by the tie-break key)."""
        order = self.chronological_order()
        items, bounds = self.items[order], self.user_bounds(order)
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def time_sequences(self) -> list[np.ndarray]:
        """Per user, the unix times (or positions, without timestamps) matching :meth:`sequences`."""
        order = self.chronological_order()
        times, bounds = self.times[order], self.user_bounds(order)
        return [times[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def matrix(self) -> sparse.csr_matrix:
        """Binary user x item CSR matrix (float32)."""
        from scipy import sparse

        m = sparse.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        m.data[:] = 1.0
        return m

    def snapshot(self) -> dict[str, Any]:
        """A data fingerprint for manifests: name, sizes and a SHA-256 of the rows."""
        h = hashlib.sha256()
        for arr in (self.users, self.items, self.times):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return {"name": self.name, "n_users": self.n_users, "n_items": self.n_items,
                "n_interactions": len(self), "sha256": h.hexdigest()}


def interactions_from_arrays(
    user_raw: np.ndarray, item_raw: np.ndarray, times: np.ndarray | None, ratings: np.ndarray | None = None,
    *, name: str = "custom", item_raw_vocab: np.ndarray | None = None,
) -> Interactions:
    """Build Interactions from raw ids; vocabularies are sorted raw ids.

    ``times=None``: the log has only an order (each user's rows in the given order; times become positions).
    ``ratings=None``: implicit events (every row a positive, ratings 1).
    """
    user_raw = np.asarray(user_raw, dtype=np.int64)
    item_raw = np.asarray(item_raw, dtype=np.int64)
    user_vocab = Vocabulary(np.unique(user_raw))
    item_vocab = Vocabulary(np.unique(item_raw) if item_raw_vocab is None else np.asarray(item_raw_vocab, np.int64))
    users = np.searchsorted(user_vocab.raw_ids, user_raw)
    items = item_vocab.indices(item_raw) if item_raw_vocab is not None else np.searchsorted(item_vocab.raw_ids, item_raw)
    r = np.ones(len(users), np.float32) if ratings is None else np.asarray(ratings, dtype=np.float32)
    t = positions_as_times(user_raw) if times is None else np.asarray(times, dtype=np.int64)
    return Interactions(users.astype(np.int64, copy=False), items.astype(np.int64, copy=False), t, r, user_vocab, item_vocab, name,
                        tiebreak=tiebreak_keys(name, user_raw, item_raw), has_timestamps=times is not None,
                        has_ratings=ratings is not None)


def missing_metadata(data: Interactions) -> list[str]:
    """What the dataset lacks, among "timestamps", "ratings", "genres", "years" (models fall back without it)."""
    present = {"timestamps": data.has_timestamps, "ratings": data.has_ratings,
               "genres": any(data.item_genres.values()), "years": bool(data.item_years)}
    return [k for k, ok in present.items() if not ok]


DATASET_NOTES = {  # what each missing part means for every model (the card's dataset line)
    "timestamps": "no timestamps: each user's events are in file order and `times` are positions",
    "ratings": "implicit events only: every event is a positive",
    "genres": "no genres",
    "years": "no release years",
}
SHORT_HISTORY = 10  # median events per user below which the card flags short histories


def fallback_notes(model: str, fallbacks: dict[str, str], data: Interactions) -> list[str]:
    """``"<model>: <what it does instead>"`` for each metadata the model wants (``fallbacks`` keys) but data lacks."""
    missing = missing_metadata(data)
    return [f"{model}: {text}" for need, text in fallbacks.items() if need in missing]


def dataset_profile(data: Interactions) -> dict[str, Any]:
    """Shape of a dataset for run files and cards: sizes, history lengths, missing metadata, equal-time events."""
    lengths = np.bincount(data.users, minlength=data.n_users)
    order = data.chronological_order()
    same_user = data.users[order][1:] == data.users[order][:-1]
    tied = same_user & (data.times[order][1:] == data.times[order][:-1])
    median = float(np.median(lengths)) if len(lengths) else 0.0
    missing = missing_metadata(data)
    notes = [DATASET_NOTES[m] for m in missing]
    if median < SHORT_HISTORY:
        notes.append(f"short histories: median {median:g} events per user (users with fewer than 3 stay in train)")
    return {"n_users": data.n_users, "n_items": data.n_items, "n_interactions": len(data),
            "median_history": median, "missing": missing, "notes": notes,
            "share_events_tied_with_previous": round(float(tied.sum() / max(int(same_user.sum()), 1)), 4),
            "tiebreak": "splitmix64 hash of (dataset name, user id, item id)"}


def _read_ml100k(folder: Path) -> Interactions:
    raw = np.loadtxt(folder / "u.data", dtype=np.int64)
    data = interactions_from_arrays(raw[:, 0], raw[:, 1], raw[:, 3], raw[:, 2], name="ml-100k")
    if (folder / "u.user").exists():
        from .demographics import attach_user_attributes, read_ml100k_users

        attach_user_attributes(data, read_ml100k_users(folder / "u.user"))
    if not (folder / "u.item").exists():
        return data
    genre_file = folder / "u.genre"
    genre_text = genre_file.read_text("latin-1") if genre_file.exists() else ""
    genre_names = [line.split("|")[0] for line in genre_text.splitlines() if line]
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
    data = interactions_from_arrays(ratings.userId.values, ratings.movieId.values,
                                    ratings.timestamp.values if "timestamp" in ratings else None,
                                    ratings.rating.values if "rating" in ratings else None, name=name)
    if not (folder / "movies.csv").exists():
        return data
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


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    """A MovieLens ``::``-separated file (ml-1m, ml-10m; latin-1), read by the C parser."""
    import io

    import pandas as pd

    text = path.read_bytes().decode("latin-1")
    # '::' is the separator; titles may hold single colons and commas, so fields go through '\t'
    return pd.read_csv(io.StringIO(text.replace("::", "\t")), sep="\t", header=None, names=names,
                       quoting=3, dtype=str if "title" in names else None)


def _read_ml_dat(folder: Path) -> Interactions:
    """ml-1m / ml-10m: ``ratings.dat`` (UserID::MovieID::Rating::Timestamp), ``movies.dat`` optional."""
    ratings = _read_dat(folder / "ratings.dat", ["userId", "movieId", "rating", "timestamp"])
    data = interactions_from_arrays(ratings.userId.values, ratings.movieId.values, ratings.timestamp.values,
                                    ratings.rating.values, name=folder.name)
    if (folder / "movies.dat").exists():
        movies = _read_dat(folder / "movies.dat", ["movieId", "title", "genres"])
        for mid, title, genres in movies.itertuples(index=False):
            idx = data.item_vocab.index(int(mid))
            if idx < 0:
                continue
            data.item_titles[idx] = title
            data.item_genres[idx] = [] if genres in ("(no genres listed)", "") else str(genres).split("|")
            year = str(title).strip()[-5:-1]
            if year.isdigit():
                data.item_years[idx] = int(year)
    return data


COLUMN_ALIASES = {  # generic layout: first matching header (case-insensitive) wins
    "user_id": ("user_id", "userid", "user"),
    "item_id": ("item_id", "itemid", "item", "movieid", "movie_id"),
    "rating": ("rating", "value", "score"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
}


def _column(frame: pd.DataFrame, role: str) -> str | None:
    lowered = {str(c).strip().lower(): c for c in frame.columns}
    return next((lowered[a] for a in COLUMN_ALIASES[role] if a in lowered), None)


def _integer_ids(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Integer raw ids as they are; other ids become 1-based ranks in sorted order (with the labels)."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64), None
    codes, labels = pd.factorize(values.astype(str), sort=True)
    return codes.astype(np.int64) + 1, [str(x) for x in labels]


def _unix_seconds(values: pd.Series) -> np.ndarray:
    import pandas as pd

    seconds: np.ndarray
    if pd.api.types.is_numeric_dtype(values):
        seconds = values.to_numpy(np.float64).astype(np.int64)
        return seconds
    stamps = pd.to_datetime(values, utc=True)
    seconds = ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    return seconds


def read_interaction_csv(path: Path | str, name: str | None = None) -> Interactions:
    """An interaction log in the generic CSV layout (see the module docstring).

    Columns by header (case-insensitive; aliases in ``COLUMN_ALIASES``): ``user_id``, ``item_id`` (integers,
    or any strings, numbered 1.. in sorted order), optional ``rating`` (explicit value; absent = implicit),
    optional ``timestamp`` (unix seconds or ISO 8601; absent = file order within each user). An ``items.csv``
    beside it adds titles, genres and years.
    """
    import pandas as pd

    path = Path(path)
    frame = pd.read_csv(path)
    cols = {role: _column(frame, role) for role in COLUMN_ALIASES}
    if cols["user_id"] is None or cols["item_id"] is None:
        raise DatasetError(f"{path}: needs a header with user_id and item_id columns "
                           f"(optional rating, timestamp); found {list(frame.columns)}")
    frame = frame.dropna(subset=[cols["user_id"], cols["item_id"]])
    users, _ = _integer_ids(frame[cols["user_id"]])
    items, item_labels = _integer_ids(frame[cols["item_id"]])
    if cols["timestamp"] is not None and frame[cols["timestamp"]].isna().any():
        raise DatasetError(f"{path}: {int(frame[cols['timestamp']].isna().sum())} rows without a timestamp; "
                           "give every row one, or drop the column to use the file order")
    times = None if cols["timestamp"] is None else _unix_seconds(frame[cols["timestamp"]])
    ratings = None if cols["rating"] is None else frame[cols["rating"]].to_numpy(np.float32)
    data = interactions_from_arrays(users, items, times, ratings, name=name or _dataset_name(path))
    if item_labels is not None:
        data.item_titles = {data.item_vocab.index(i + 1): label for i, label in enumerate(item_labels)}
    item_file = path.parent / "items.csv"
    if item_file.exists():
        _attach_item_csv(data, item_file, {str(v): k for k, v in data.item_titles.items()} if item_labels else None)
    if (path.parent / "users.csv").exists():  # member groups (ml_core.demographics)
        from .demographics import attach_user_attributes, read_users_csv

        attach_user_attributes(data, read_users_csv(path.parent / "users.csv"))
    return data


def _dataset_name(path: Path) -> str:
    return path.parent.name if path.stem in ("interactions", "ratings") else path.stem


def _attach_item_csv(data: Interactions, path: Path, by_label: dict[str, int] | None) -> None:
    """Titles, genres (``|``-separated) and years from ``items.csv`` (``item_id[,title][,genres][,year]``)."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={"item_id": str})
    for row in frame.to_dict("records"):
        key = str(row["item_id"])
        idx = by_label.get(key, -1) if by_label is not None else (data.item_vocab.index(int(key))
                                                                   if key.lstrip("-").isdigit() else -1)
        if idx < 0:
            continue
        if isinstance(row.get("title"), str):
            data.item_titles[idx] = row["title"]
        if isinstance(row.get("genres"), str) and row["genres"]:
            data.item_genres[idx] = [g for g in row["genres"].split("|") if g]
        if pd.notna(row.get("year", None)):
            data.item_years[idx] = int(row["year"])


DATASETS = {
    "ml-100k": lambda: _read_ml100k(SHARED_DATA / "ml-100k"),
    "ml-latest-small": lambda: _read_ml_latest(
        EMBEDDED_DATA if (EMBEDDED_DATA / "ratings.csv").exists() else SHARED_DATA / "ml-latest-small",
        "ml-latest-small"),
}


def _is_movielens_ratings(path: Path) -> bool:
    header = path.open(encoding="utf-8", errors="replace").readline().strip().split(",")
    return {"userId", "movieId"} <= set(header)


def load_dataset(name_or_path: str) -> Interactions:
    """A named dataset (``ml-100k``, ``ml-latest-small``), a dataset folder or an interaction CSV file.

    Folders: ``u.data`` (ml-100k), ``ratings.dat`` (ml-1m, ml-10m), a MovieLens ``ratings.csv`` (ml-latest,
    ml-20m, ml-25m, ml-32m, ``python -m ml_core synth``), or ``interactions.csv`` / a ``ratings.csv`` in the
    generic layout (:func:`read_interaction_csv`).
    """
    if name_or_path in DATASETS:
        return DATASETS[name_or_path]()
    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".csv":
        return read_interaction_csv(path)
    if (path / "u.data").exists():
        return _read_ml100k(path)
    if (path / "ratings.dat").exists():
        return _read_ml_dat(path)
    if (path / "ratings.csv").exists():
        if _is_movielens_ratings(path / "ratings.csv"):
            return _read_ml_latest(path, path.name)
        return read_interaction_csv(path / "ratings.csv", path.name)
    if (path / "interactions.csv").exists():
        return read_interaction_csv(path / "interactions.csv", path.name)
    raise DatasetError(f"unknown dataset {name_or_path!r}: expected one of {sorted(DATASETS)}, a folder with "
                       "u.data, ratings.dat, ratings.csv or interactions.csv, or a .csv file (user_id,item_id[,rating][,timestamp])")
