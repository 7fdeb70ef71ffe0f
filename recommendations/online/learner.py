"""This process's online learner: what it learns on, its held-out check, and catching up with the newest checkpoint.

One :class:`~ml_core.serving.OnlineLearningCoordinator` per process that applies events. It learns on the serving
engine's item space and counters, with its own copy of the ranker (``Engine.online_learner``), when a serving
bundle exists; otherwise on the catalogue's movie ids (counters and sequences only). It is rebuilt when the
process's engine or its bundle changes.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from django.conf import settings

from catalog.selectors import movie_list, ratings_as_arrays
from ml_core.serving import Engine, Holdout, OnlineConfig, OnlineLearningCoordinator, UserContext

from .. import serving
from .checkpoints import checkpoint_latest

logger = logging.getLogger(__name__)

lock = threading.RLock()  # one applier at a time in this process; held across apply, push and the deferred step
_local: dict[str, Any] = {"learner": None, "index": None, "engine": None}


def _config() -> OnlineConfig:
    return OnlineConfig(learning_rate=float(settings.ONLINE_LEARNING_RATE),
                        rollback_drop=float(settings.ONLINE_ROLLBACK_DROP),
                        holdout_every=int(settings.ONLINE_HOLDOUT_EVERY))


def _holdout(index: dict[int, int], n_items: int) -> Holdout | None:
    """Held-out check for the ranker: a few users' last rating (sampled with a fixed seed) after the rest."""
    users, movies, times, _ = ratings_as_arrays()
    size = int(settings.ONLINE_HOLDOUT_USERS)
    if not len(users) or size <= 0:
        return None
    order = np.lexsort((times, users))
    users, movies = users[order], movies[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    eligible = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= 6 and int(movies[e - 1]) in index]
    if not eligible:
        return None
    rng = np.random.default_rng(0)
    picked = [eligible[i] for i in sorted(rng.choice(len(eligible), size=min(size, len(eligible)), replace=False))]
    contexts = [UserContext(history=[index[m] for m in movies[s : e - 1].tolist() if m in index][-200:])
                for s, e in picked]
    positives = [index[int(movies[e - 1])] for _, e in picked]
    return Holdout.build(contexts, positives, n_items, negatives=99, seed=0)


def _build(engine: Engine | None) -> tuple[OnlineLearningCoordinator, dict[int, int]]:
    """A learner on the engine's item space (with its own ranker copy), or on the catalogue's movie ids."""
    if engine is not None:
        learner = engine.online_learner(_config())
        index = {m: i for i, m in enumerate(engine.movie_ids)}
        if learner.ranker is not None:
            learner.holdout = _holdout(index, learner.n_items)
        return learner, index
    ids = sorted(movie_list().values_list("id", flat=True))
    return (OnlineLearningCoordinator(n_items=len(ids), config=_config(), base=f"catalog:{len(ids)}"),
            {movie_id: i for i, movie_id in enumerate(ids)})


def _stale(engine: Engine | None) -> bool:
    learner = _local["learner"]
    return (learner is None or _local["engine"] is not engine
            or (engine is not None and learner.base != engine.online_base))


def learner() -> OnlineLearningCoordinator:
    """This process's learner (the serving engine loaded if a bundle exists), caught up with the newest state."""
    with lock:
        engine = serving.engine_or_none()
        if _stale(engine):
            built, index = _build(engine)
            _local.update(learner=built, index=index, engine=engine)
            catch_up()
        return _local["learner"]  # type: ignore[no-any-return]


def learner_if_built() -> OnlineLearningCoordinator | None:
    """The learner if this process built one (never builds it)."""
    return _local["learner"]  # type: ignore[no-any-return]


def learner_index() -> dict[int, int]:
    """Movie id -> the learner's item index."""
    learner()
    return _local["index"]  # type: ignore[no-any-return]


def learner_reset() -> None:
    """Forget the in-memory learner (after a failed transaction, or in tests); the next use reloads it."""
    with lock:
        _local.update(learner=None, index=None, engine=None)


def catch_up() -> bool:
    """Load the newest stored checkpoint if it is newer than the learner's (another process applied events),
    including the steps still waiting for their check and the queued examples; True when state changed."""
    with lock:
        current: OnlineLearningCoordinator = _local["learner"]
        latest = checkpoint_latest(newer_than=current.version)
        if latest is None:
            return False
        try:
            current.load_state_bytes(bytes(latest.state), version=latest.id, learner=True)
        except (ValueError, RuntimeError, KeyError) as exc:  # learned on another bundle: keep this one's state
            logger.warning("online checkpoint v%s not loaded: %s", latest.id, exc)
            current.version = latest.id
            return False
        hand_to_engine()
        return True


def hand_to_engine() -> None:
    """Give this process's serving engine the learner's published state (counters, checked ranker weights)."""
    engine, current = _local["engine"], _local["learner"]
    if engine is not None and current is not None and current.base == engine.online_base:
        engine.apply_online_state(current.published_state())
