"""Applying a mini-batch exactly once: events -> the learner -> a checkpoint in the same transaction -> published.

The push comes first: a batch commits (ratings, counters, sequences, the ranker's SGD examples queued in the
checkpoint), the caller pushes the affected users' lists, and only then does the ranker take its SGD step and,
when due, the held-out check (:func:`online_learn_deferred`); the outcome is stored as a checkpoint of its own.
Until a check passes, checkpoints publish the last checked ranker weights, so serving engines never load weights
that failed it; queued examples that a crash left behind are stepped by the next applier that loads them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from catalog.selectors import rating_list_for_user
from events.models import Event
from events.selectors import event_recent_movie_ids
from events.services import AppliedBatch, event_apply_batch
from ml_core.serving import OnlineEvent, OnlineLearningCoordinator

from . import learner as learners
from .checkpoints import checkpoint_follow, checkpoint_save
from .sync import publish_version

logger = logging.getLogger(__name__)


def _to_online(events: Sequence[Event], index: dict[int, int]) -> list[OnlineEvent]:
    return [OnlineEvent(event_id=str(e.id), user=e.user_id, item=index.get(e.movie_id, -1), kind=e.kind,
                        value=e.value, time=e.occurred_at.timestamp(), propensity=e.propensity, position=e.position)
            for e in events]


def _stored_history(user_id: int) -> list[int]:
    """The user's stored history, oldest first: catalog ratings, then applied events (last occurrence wins)."""
    rows = list(rating_list_for_user(user=user_id).values_list("movie_id", "rated_at")[:200])
    rated = [movie_id for movie_id, _ in sorted(rows, key=lambda r: r[1])]
    return list(dict.fromkeys(rated + event_recent_movie_ids(user_id=user_id)))


def _seed_users(learner: OnlineLearningCoordinator, events: Sequence[Event], index: dict[int, int]) -> None:
    """Load the stored history of users this process's learner has not seen yet."""
    for user_id in sorted({e.user_id for e in events}):
        if not learner.has_user(user_id):
            learner.seed_user(user_id, [index[m] for m in _stored_history(user_id) if m in index])


def _apply(events: list[Event]) -> int:
    """Inside the applying transaction: update the learner and store its checkpoint; returns the checkpoint id."""
    learner = learners.learner()
    learners.catch_up()  # serialised by the apply lock: start from the newest committed state
    index = learners.learner_index()
    _seed_users(learner, events, index)
    report = learner.apply(_to_online(events, index), defer=True)  # the SGD step and check wait for the push
    saved = checkpoint_save(state=learner.state_bytes(), report=report.as_dict(), events_applied=len(events))
    return saved.id


def _published(version: int) -> None:
    """The learner's state ``version`` is committed: serve it here and tell the other workers."""
    learner = learners.learner()
    learner.version = version
    learners.hand_to_engine()
    publish_version(version)


def online_apply(*, event_ids: Sequence[str]) -> AppliedBatch:
    """Apply events exactly once and publish the new state version; the in-memory state rolls back on failure.

    ``result`` of the returned batch is the stored checkpoint's id (None when every event was applied before).
    """
    with learners.lock:
        try:
            batch = event_apply_batch(event_ids=event_ids, apply=_apply)
        except Exception:
            learners.learner_reset()
            raise
        if batch.result is not None:
            _published(batch.result)
    return batch


def online_learn_deferred() -> int | None:
    """After the push: the ranker's queued SGD step and due held-out check, stored as a new checkpoint.

    Returns the new version, or None when nothing was waiting, or another applier stored a newer state
    meanwhile (it loaded the queued examples and unchecked steps and learns them itself; ours loads its
    state on the next apply), or storing failed (the last stored state still carries the work).
    """
    with learners.lock:
        learner = learners.learner_if_built()
        if learner is None or not learner.deferred_work:
            return None
        based_on = learner.version
        try:
            report = learner.learn_deferred()
            saved = checkpoint_follow(based_on=based_on, state=learner.state_bytes,
                                      report={"deferred": report.as_dict() if report else {}})
        except Exception:  # noqa: BLE001 - the batch is committed; the stored state still carries the work
            logger.exception("deferred learning after v%s not stored; the next apply reloads and repeats it",
                             based_on)
            learners.learner_reset()
            return None
        if saved is None:
            return None
        _published(saved.id)
        return saved.id
