"""The online learner's checkpoints: stored in the applying transaction, pruned, read by the newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.services import event_apply_lock

from ..models import OnlineCheckpoint

CHECKPOINTS_KEPT = 20


def checkpoint_save(*, state: bytes, report: dict[str, Any], events_applied: int) -> OnlineCheckpoint:
    """Store the learner's state (inside the applying transaction) and prune old checkpoints."""
    checkpoint = OnlineCheckpoint.objects.create(state=state, report=report, events_applied=events_applied)
    OnlineCheckpoint.objects.filter(id__lte=checkpoint.id - CHECKPOINTS_KEPT).delete()
    return checkpoint


def checkpoint_follow(*, based_on: int, state: Callable[[], bytes], report: dict[str, Any]) -> OnlineCheckpoint | None:
    """Store a learner state that follows checkpoint ``based_on`` without applying events (e.g. the outcome of a
    held-out check), under the apply lock; None when another applier stored a newer checkpoint meanwhile."""
    with event_apply_lock():
        if checkpoint_latest_id() != based_on:
            return None
        return checkpoint_save(state=state(), report=report, events_applied=0)


def checkpoint_latest(*, newer_than: int = 0) -> OnlineCheckpoint | None:
    """The newest checkpoint with id above ``newer_than``, or None."""
    return OnlineCheckpoint.objects.filter(id__gt=newer_than).order_by("-id").first()


def checkpoint_latest_id() -> int:
    """The newest checkpoint's id (the online state version), 0 before the first."""
    return OnlineCheckpoint.objects.order_by("-id").values_list("id", flat=True).first() or 0
