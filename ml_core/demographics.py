"""Member groups where a dataset has them: age band, gender and occupation per user (plain Python, no Django).

Read by :func:`ml_core.data.load_dataset` into :attr:`Interactions.user_attributes`
(attribute -> {user index -> group label}):

* ml-100k: ``u.user`` beside ``u.data`` (``id|age|gender|occupation|zip``);
* the generic CSV layout: an optional ``users.csv`` beside the interactions, with a ``user_id`` column and any of
  ``age`` (years, banded here), ``gender`` and ``occupation``; empty cells mean "not known".

ml-latest-small and most other logs carry none: their ``user_attributes`` stay empty, and the fairness report says
so instead of inventing groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .data import DatasetError

if TYPE_CHECKING:
    from .data import Interactions

# the MovieLens 1M age bands (the same cut points as events/demographics.py, which the site's analytics use)
AGE_BANDS = ((0, 17, "<18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 49, "45-49"),
             (50, 55, "50-55"), (56, 200, "56+"))
ATTRIBUTES = ("age", "gender", "occupation")


class DemographicsError(DatasetError):
    """A demographics file that cannot be read; the message names the file and line."""


def age_band(age: int) -> str:
    """The band label of an age in years ("25-34"); DemographicsError outside 0-200."""
    for low, high, band in AGE_BANDS:
        if low <= age <= high:
            return band
    raise DemographicsError(f"age {age} is outside 0-200")


def attach_user_attributes(data: Interactions, by_raw_user: Mapping[int, Mapping[str, str]]) -> None:
    """Set ``data.user_attributes`` from raw user id -> {attribute: label}; users outside the log are ignored,
    empty labels mean unknown, and attributes nobody in the log has are left out."""
    out: dict[str, dict[int, str]] = {}
    for raw, attrs in by_raw_user.items():
        idx = data.user_vocab.index(int(raw))
        if idx < 0:
            continue
        for name, label in attrs.items():
            if label:
                out.setdefault(name, {})[idx] = str(label)
    data.user_attributes = {name: out[name] for name in ATTRIBUTES if name in out}
    data.user_attributes.update({name: groups for name, groups in out.items() if name not in ATTRIBUTES})


def read_ml100k_users(path: Path) -> dict[int, dict[str, str]]:
    """ml-100k ``u.user``: raw user id -> {"age": band, "gender": "F"/"M", "occupation": ...}."""
    users = {}
    for number, line in enumerate(Path(path).read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        try:
            users[int(parts[0])] = {"age": age_band(int(parts[1])), "gender": parts[2].strip(),
                                    "occupation": parts[3].strip()}
        except (IndexError, ValueError) as exc:
            raise DemographicsError(f"{path}:{number}: malformed u.user line {line!r} "
                                    "(expected id|age|gender|occupation|zip)") from exc
    return users


def read_users_csv(path: Path) -> dict[int, dict[str, str]]:
    """A generic ``users.csv``: ``user_id`` plus any of ``age`` (years), ``gender``, ``occupation``."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "user_id" not in columns:
        raise DemographicsError(f"{path}: needs a user_id column (and any of {', '.join(ATTRIBUTES)}); "
                                f"found {list(frame.columns)}")
    users: dict[int, dict[str, str]] = {}
    for number, row in enumerate(frame.to_dict("records"), start=2):
        try:
            raw = int(row[columns["user_id"]])
            attrs = {name: str(row[columns[name]]).strip() for name in ATTRIBUTES if name in columns}
            if attrs.get("age"):
                attrs["age"] = age_band(int(float(attrs["age"])))
        except ValueError as exc:
            raise DemographicsError(f"{path}:{number}: {exc}") from exc
        users[raw] = attrs
    return users
