"""Deterministic bucketing: which arm of the running experiment serves a member (request path and events).

A member's position is ``u = SHA-256(salt : experiment id : member id)`` read as a fraction in [0, 1); the arms,
in id order, own consecutive intervals of [0, 1) as wide as their traffic probabilities, and the member gets the
arm whose interval holds ``u``. Nothing depends on the process (no Python ``hash``, no random state), so every
web and worker process, before and after a restart, puts a member in the same arm.

The probabilities are the arms' fixed shares (A/B/n), or for Thompson allocation the ones the monitor last
computed and stored (``Experiment.allocation_probabilities``, recomputed by ``experiments.tasks.monitor_experiments``).
We chose stored probabilities over sampling per request so a member sees one arm between two computations
(every impression of theirs in that period has one arm's policy and propensities); when the probabilities move,
only members whose ``u`` lies where the intervals moved change arm. Arms the guardrail stopped get probability 0
and the others are renormalised.

One experiment runs at a time. Its snapshot (ids, salt, probabilities, each arm's request overrides) is kept in
the cache under ``SNAPSHOT_KEY`` and rewritten on every change; the request reads it in the same round trip as
the serving versions (``recommendations/serving.py``). An event, which reads nothing else from the cache, finds it
in this process's memory (``SNAPSHOT_MEMORY``): every publish drops it there in every process at once
(``apex_site/broadcast.py``), so an event recorded after a change carries the new arm without a round trip each.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from apex_site.broadcast import LocalMemory

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "apex:experiments:running"
SNAPSHOT_TTL_S = 60  # a per-process cache (no Redis) sees another process's change within this long
SNAPSHOT_MEMORY = LocalMemory("experiment-snapshot", ttl_s=30.0)


@dataclass(frozen=True)
class Assignment:
    """A member's arm in the running experiment, and what it changes in their recommendation requests."""

    experiment_id: int
    arm_id: int
    arm_name: str
    overrides: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "arm_id": self.arm_id, "arm": self.arm_name}


def bucket_position(*, salt: str, experiment_id: int, user_id: int) -> float:
    """The member's fixed position in [0, 1) for this experiment (the first 64 bits of a SHA-256)."""
    digest = hashlib.sha256(f"{salt}:{experiment_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def bucket(*, snapshot: dict[str, Any], user_id: int) -> dict[str, Any] | None:
    """The snapshot's arm (its dict) that holds the member's position; None when no arm has traffic."""
    arms = [a for a in snapshot.get("arms", []) if a["p"] > 0]
    total = sum(a["p"] for a in arms)
    if not arms or total <= 0:
        return None
    u = bucket_position(salt=snapshot["salt"], experiment_id=snapshot["id"], user_id=user_id) * total
    edge = 0.0
    for arm in arms:
        edge += arm["p"]
        if u < edge:
            return arm
    return arms[-1]  # u within rounding of the total


def snapshot_build() -> dict[str, Any]:
    """The running experiment as plain values ({} when none runs): read from the database."""
    from .models import Experiment
    from .selectors import arm_probabilities

    experiment = Experiment.objects.filter(status=Experiment.Status.RUNNING).prefetch_related("arms").first()
    if experiment is None:
        return {}
    from .arms import arm_overrides

    probabilities = arm_probabilities(experiment=experiment)
    return {"id": experiment.pk, "salt": experiment.salt,
            "arms": [{"id": arm.pk, "name": arm.name, "p": probabilities.get(arm.pk, 0.0),
                      "overrides": arm_overrides(kind=arm.kind, config=arm.config)}
                     for arm in sorted(experiment.arms.all(), key=lambda a: a.pk)]}


def snapshot_publish() -> dict[str, Any]:
    """Rebuild the snapshot and put it in the cache for every process (after any change to a running experiment)."""
    snapshot = snapshot_build()
    cache.set(SNAPSHOT_KEY, snapshot, SNAPSHOT_TTL_S)
    SNAPSHOT_MEMORY.forget([SNAPSHOT_KEY])
    return snapshot


def snapshot_current(published: Any = None) -> dict[str, Any]:
    """The snapshot: ``published`` when the caller read ``SNAPSHOT_KEY`` already, else this process's memory, else
    the cache, else built."""
    if published is not None:
        return published  # type: ignore[no-any-return]
    snapshot = SNAPSHOT_MEMORY.get(SNAPSHOT_KEY)
    if snapshot is not None:
        return snapshot  # type: ignore[no-any-return]
    generation = SNAPSHOT_MEMORY.generation
    snapshot = cache.get(SNAPSHOT_KEY)
    if snapshot is None:
        snapshot = snapshot_publish()
    SNAPSHOT_MEMORY.put(SNAPSHOT_KEY, snapshot, generation=generation)
    return snapshot  # type: ignore[no-any-return]


def member_arm(*, user_id: int, published: Any = None) -> Assignment | None:
    """The member's arm in the running experiment (None: no experiment runs, or no arm has traffic)."""
    snapshot = snapshot_current(published)
    arm = bucket(snapshot=snapshot, user_id=user_id) if snapshot else None
    if arm is None:
        return None
    return Assignment(experiment_id=snapshot["id"], arm_id=arm["id"], arm_name=arm["name"],
                      overrides=arm["overrides"])


def member_arm_id(user_id: int) -> int | None:
    """The member's arm id, or None: what settings.EVENTS_ARM_RESOLVER names for the events app."""
    assignment = member_arm(user_id=user_id)
    return None if assignment is None else assignment.arm_id
