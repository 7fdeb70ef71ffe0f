"""Demographic buckets where they are known: MovieLens 100K publishes age, gender and occupation per user.

Imported ml-100k users are named ``ml-100k-<id>`` by the catalog importer; their bucket is
"<gender> <age band>" (and, for the fairness report, their age band, gender and occupation) from ``u.user`` (the file named by ``APEX_DEMOGRAPHICS_FILE``, by default the
shared ml-100k copy). Everyone else (people who signed up here: we do not ask) is "unknown".
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.conf import settings

from accounts.selectors import user_names_by_id

AGE_BANDS = ((0, 17, "<18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 49, "45-49"),
             (50, 55, "50-55"), (56, 200, "56+"))
DEMOGRAPHIC_BUCKETS = tuple(f"{g} {band}" for g in ("F", "M") for _, _, band in AGE_BANDS) + ("unknown",)
PREFIX = "ml-100k-"


def _band(age: int) -> str:
    return next(band for low, high, band in AGE_BANDS if low <= age <= high)


def demographics_file() -> Path:
    default = Path(settings.BASE_DIR).parent / "shared" / "data" / "ml-100k" / "u.user"
    return Path(settings.APEX_DEMOGRAPHICS_FILE or default)


@lru_cache(maxsize=4)
def _ml100k_people(path: Path) -> dict[int, dict[str, str]]:
    """ml-100k user id -> {"age": band, "gender", "occupation"}, from u.user ("id|age|gender|occupation|zip");
    empty when the file is absent."""
    if not path.exists():
        return {}
    people = {}
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        try:
            people[int(parts[0])] = {"age": _band(int(parts[1])), "gender": parts[2].strip(),
                                     "occupation": parts[3].strip()}
        except (IndexError, ValueError, StopIteration) as exc:
            raise ValueError(f"{path}:{number}: malformed u.user line {line!r}") from exc
    return people


def _source_ids(user_ids: list[int]) -> dict[int, int]:
    """Site user id -> ml-100k user id, for the imported ml-100k members among ``user_ids``."""
    names = user_names_by_id(user_ids=user_ids)
    out = {}
    for user_id in user_ids:
        name = names.get(user_id, "")
        source_id = name[len(PREFIX):] if name.startswith(PREFIX) else ""
        if source_id.isdigit():
            out[user_id] = int(source_id)
    return out


def demographic_buckets(*, user_ids: list[int]) -> dict[int, str]:
    """user id -> demographic bucket ("unknown" where not known)."""
    known = _ml100k_people(demographics_file())
    sources = _source_ids(user_ids)
    result = {}
    for user_id in user_ids:
        person = known.get(sources.get(user_id, -1))
        result[user_id] = f"{person['gender']} {person['age']}" if person else "unknown"
    return result


def demographic_attributes(*, user_ids: list[int]) -> dict[int, dict[str, str]]:
    """user id -> {"age": band, "gender", "occupation"} for the members whose demographics are known (others left
    out): the groups of the fairness report."""
    known = _ml100k_people(demographics_file())
    return {user_id: dict(known[source]) for user_id, source in _source_ids(user_ids).items() if source in known}
