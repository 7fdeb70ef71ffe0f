"""The serving facade: one :class:`Engine` per process, whose public methods are the whole serving contract.

* Requests: :meth:`Engine.recommend_user` (a history of movie ids, oldest first), :meth:`Engine.recommend_item`,
  :meth:`Engine.predict_ratings` / :meth:`Engine.predict_rating` (the explicit-rating predictor, the user's part
  folded in from the given ratings), :meth:`Engine.knowledge_graph`, :meth:`Engine.trending`,
  :meth:`Engine.popularity_buckets`.
* What it serves: :meth:`Engine.metadata`, :meth:`Engine.item_index`, ``movie_ids``, ``n_items``, ``dataset``,
  the versions (``manifest_version``, ``weights_version``, ``online_version``) and :meth:`Engine.stats`.
* Changing it while it serves: :meth:`Engine.set_weights` (blend weights), :meth:`Engine.reload_if_changed`
  (a new bundle on disk), :meth:`Engine.apply_online_state` (counters and ranker weights published by the online
  learner; the learner works on its own copy from :meth:`Engine.online_learner` and hands over a new state,
  it never touches the engine's arrays).

Tiers (``ml_core/serving/tiers.py``) are chosen at start-up from the hardware unless one is given.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..serving_artifacts import read_manifest
from . import pipeline
from .bundle import Bundle
from .cache import PoolStore
from .pipeline import RecommendationList
from .tiers import Tier, detect_tier, limit_threads

if TYPE_CHECKING:
    from .online import OnlineConfig, OnlineLearningCoordinator, PublishedState

log = logging.getLogger(__name__)


class Engine:
    """One process's recommender: a loaded bundle plus hot-swappable weights and online state."""

    def __init__(self, directory: Path, tier: Tier) -> None:
        self.directory = Path(directory)
        self.tier = tier
        self._lock = threading.Lock()
        self._counters = {"requests": 0, "gated": 0, "cold_start": 0}
        self._bundle = Bundle.load(self.directory, int(tier))

    # ---- what it serves -----------------------------------------------------------------------------
    @property
    def tier_name(self) -> str:
        return self.tier.label

    @property
    def manifest_version(self) -> str:
        return str(self._bundle.manifest.get("version", ""))

    @property
    def weights_version(self) -> str:
        return self._bundle.weights_version

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self._bundle.model_names, self._bundle.weights.tolist(), strict=True))

    @property
    def online_version(self) -> int:
        """The online state last applied (0: the bundle's own counters and ranker)."""
        return self._bundle.online_version

    @property
    def online_base(self) -> str:
        """What an online state must have been learned on to apply here: this bundle's version."""
        return f"bundle:{self.manifest_version}"

    @property
    def dataset(self) -> str:
        """The data the bundle was trained on (``catalog`` when built from the site's own ratings)."""
        return str(self._bundle.ensemble.get("dataset", ""))

    @property
    def n_items(self) -> int:
        return len(self._bundle.movie_ids)

    @property
    def movie_ids(self) -> list[int]:
        """The serving item space, in index order (the models' vocabulary first, catalogue-only movies after)."""
        return list(self._bundle.movie_ids)

    def item_index(self, movie_id: int) -> int:
        """The serving index of a movie, or -1 when the bundle does not know it."""
        return self._bundle.index.get(int(movie_id), -1)

    def metadata(self, movie_id: int) -> dict[str, Any] | None:
        i = self.item_index(movie_id)
        return None if i < 0 else self._bundle.meta[i]

    def stats(self) -> dict[str, Any]:
        """Requests served, how many were gated or cold-start, and the ranked-pool/user-state cache."""
        return {"tier": self.tier_name, **self._counters, "cache": self._bundle.user_states.stats(),
                "bundle_version": self.manifest_version, "weights_version": self.weights_version,
                "online_version": self.online_version}

    def scorers(self) -> dict[str, str]:
        """Each ensemble model and what scores it here: its torch class, or the ONNX scorer and its precision."""
        return {name: f"{type(s).__name__} ({getattr(s, 'precision', 'torch')})"
                for name, s in self._bundle.scorers.items()}

    def fairness_summary(self) -> dict[str, Any]:
        return self._bundle.auditor.summary()

    def share_pools(self, store: PoolStore | None) -> None:
        """Share ranked pools with the other processes through ``store`` (None: keep them to this process).

        A pool is computed once per (history, bundle state, list parameters) by whichever process meets it
        first and read by the others (ml_core/serving/cache.py); a reloaded bundle shares through it too."""
        self._bundle.shared_pools = store

    def clear_cache(self) -> None:
        """Forget the cached ranked pools and user states (benchmarks measure the uncached path with it)."""
        self._bundle.user_states.clear()

    # ---- requests -----------------------------------------------------------------------------------
    def recommend_user(self, history: Sequence[int], **kwargs: Any) -> RecommendationList:
        """Recommendations for a history of movie ids (oldest first); see pipeline.recommend_user."""
        self._counters["requests"] += 1
        result = pipeline.recommend_user(self._bundle, history, **kwargs)
        self._counters["gated"] += int(result.gated)
        self._counters["cold_start"] += int(result.cold_start)
        return result

    def recommend_item(self, movie_id: int, **kwargs: Any) -> RecommendationList:
        """Movies to watch after one movie; KeyError when the movie is not in the serving catalogue."""
        self._counters["requests"] += 1
        return pipeline.recommend_item(self._bundle, movie_id, **kwargs)

    def knowledge_graph(self, movie_id: int, k: int = 10) -> dict[str, Any]:
        """Entities of one movie and its neighbours grouped by relation (franchise, director, genre, era)."""
        b = self._bundle
        i = b.index.get(int(movie_id), -1)
        if i < 0:
            raise KeyError(movie_id)
        groups = b.kg.neighbourhood(i, k)
        return {"movie_id": int(movie_id), "entities": b.kg.entities[i],
                "relations": {rel: [{"movie_id": b.movie_ids[j], "score": round(s, 4),
                                     "shared": b.kg.relation_names(i, j)} for j, s in items]
                              for rel, items in groups.items()}}

    def predict_ratings(self, history: Sequence[int], ratings: Sequence[float], movie_ids: Sequence[int]
                        ) -> list[float | None]:
        """Predicted ratings (0.5-5, unrounded) of movies for the user who rated ``history`` (movie ids,
        oldest first) with ``ratings``; None for movies the predictor never saw or when the bundle has none."""
        predictor = self._bundle.rating
        if predictor is None:
            return [None] * len(movie_ids)
        # the fold-in is the user's, the same for every request until they rate again: kept with their states
        key = hashlib.blake2b(b"rating|" + np.asarray(history, np.int64).tobytes() + b"|"
                              + np.asarray(ratings, np.float64).tobytes(), digest_size=16).digest()
        part = self._bundle.user_states.get(key).get("rating")
        if part is None:
            part = predictor.user_part_movies(history, ratings)
            self._bundle.user_states.put(key, {"rating": part}, size=int(np.asarray(part[1]).nbytes) + 64)
        return predictor.predict_movies(history, ratings, movie_ids, part=part)  # type: ignore[no-any-return]

    def predict_rating(self, history: Sequence[int], ratings: Sequence[float], movie_id: int) -> float | None:
        """One movie's predicted rating for this history (see predict_ratings)."""
        return self.predict_ratings(history, ratings, [movie_id])[0]

    def trending(self, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` most interacted-with movies by the live counters: (movie id, count), most first."""
        b = self._bundle
        counts = b.popularity
        return [(b.movie_ids[i], float(counts[i])) for i in b.popular_order[:k].tolist()]

    def popularity_buckets(self, movie_ids: Sequence[int]) -> list[int | None]:
        """Each movie's popularity bucket in the catalogue, 0 (long tail) to 4 (head); None when unknown."""
        bucket = self._bundle.auditor.bucket
        return [None if (i := self.item_index(m)) < 0 else int(bucket[i]) for m in movie_ids]

    # ---- changing it while it serves ------------------------------------------------------------------
    def set_weights(self, weights: dict[str, float], version: str) -> None:
        """Swap blend weights atomically; models missing from ``weights`` get 0; weights are renormalised."""
        b = self._bundle
        unknown = sorted(set(weights) - set(b.model_names))
        if unknown:
            log.warning("weights for models not in the bundle ignored: %s", unknown)
        w = np.asarray([max(float(weights.get(m, 0.0)), 0.0) for m in b.model_names], np.float32)
        if b.model_names and w.sum() <= 0:
            raise ValueError("ensemble weights must include a positive weight for a loaded model")
        b.set_weights(w / max(w.sum(), 1e-12), str(version))
        log.info("ensemble weights %s swapped in: %s", version, dict(zip(b.model_names, w.round(3).tolist(), strict=False)))

    def reload_if_changed(self) -> bool:
        """Reload the bundle when its manifest version differs from the loaded one; True when reloaded."""
        try:
            version = read_manifest(self.directory).get("version")
        except Exception:  # noqa: BLE001 - a half-written bundle: keep serving the loaded one
            log.exception("serving bundle manifest unreadable; keeping version %s", self.manifest_version)
            return False
        if version == self.manifest_version:
            return False
        fresh = Bundle.load(self.directory, int(self.tier))
        fresh.shared_pools = self._bundle.shared_pools
        with self._lock:
            self._bundle = fresh
        log.info("serving bundle reloaded: version %s", version)
        return True

    def online_learner(self, config: OnlineConfig | None = None) -> OnlineLearningCoordinator:
        """An online learner for this engine's item space and counters, with its own copy of the ranker.

        The learner steps its copy; the engine changes only when it is handed a state (apply_online_state).
        """
        from .online import OnlineLearningCoordinator

        ranker = self._bundle.ranker
        return OnlineLearningCoordinator(n_items=self.n_items, config=config, base=self.online_base,
                                         ranker=ranker.learner_copy() if ranker is not None else None,
                                         item_counts=self._bundle.popularity)

    def apply_online_state(self, state: PublishedState) -> None:
        """Serve the counters and checked ranker weights of an online state (``OnlineLearningCoordinator``'s
        ``published_state()``, or ``ml_core.serving.read_published_state`` of stored bytes)."""
        if state.n_items != self.n_items or state.base != self.online_base:
            raise ValueError(f"online state for {state.n_items} items on {state.base!r}; this engine serves "
                             f"{self.n_items} items on {self.online_base!r}")
        with self._lock:
            b = self._bundle
            b.set_ranker_weights(state.ranker_weights)
            b.set_counts(state.item_counts)
            b.online_version = int(state.version)


def load_engine(artifacts_dir: Path, tier: Tier | None = None, *, single_thread: bool = True) -> Engine:
    """Pick the tier from the hardware unless one is given, and load the serving bundle once per process."""
    chosen = tier if tier is not None else detect_tier()
    if single_thread:
        limit_threads()
    start = time.perf_counter()
    engine = Engine(Path(artifacts_dir), chosen)
    if single_thread:
        limit_threads()  # again: loading the Tier 1/2 scorers imported torch
    log.info("serving engine %s loaded from %s in %.2f s (bundle %s, weights %s)", chosen.label, artifacts_dir,
             time.perf_counter() - start, engine.manifest_version, engine.weights_version)
    return engine
