"""Serving API: ``load_engine(artifacts_dir, tier)`` -> :class:`Engine` (retrieval -> ensemble ranking -> re-ranking).

Tiers (detected at start-up unless given): Tier 1 = the torch ensemble (CUDA GPU and >= 16 GB RAM;
also runs on CPU), Tier 2 = INT8 ONNX exports of the neural models in onnxruntime (no GPU, >= 8 GB),
Tier 3 = FAISS + TF-IDF only (no torch import at all).

Contract with the online learner (``ml_core.online.OnlineLearningCoordinator``) and the Django adapter:

* ``engine.n_items`` / ``engine.movie_ids`` (alias ``item_raw_ids``) / ``engine.item_index(movie_id)`` /
  ``engine.item_indices(ids)``: the serving item space (the models' vocabulary first, catalogue-only movies after).
* ``engine.ranker``: the KAN ranker instance (torch, has ``partial_fit`` and ``net``) or None; the
  learner updates it in place and the next request scores with it.
* ``engine.popularity``: an :class:`ItemPopularity` view of the served interaction counts:
  ``.counts`` (float64 per serving item) and ``.item_scores`` (log1p counts, the Popularity model's
  scale; assigning it sets the counts). The cold-start list and trending read these counts.
* ``engine.load_online_state(blob)``: swap in counters and ranker weights from
  ``OnlineLearningCoordinator.state_bytes()``; ``engine.make_online_coordinator()`` builds one wired to
  this engine's ranker and counters.
* ``engine.state_version`` / ``engine.bump_state_version(version=None)``: bumped on every online-state swap.
* ``engine.set_weights(weights, version)``: hot-swap the blend weights ({model: weight}).
* ``engine.reload_if_changed()``: reload every artifact when the bundle manifest's version changed.
* ``engine.predict_rating(history, ratings, movie_id)`` / ``engine.predict_ratings(...)``: the explicit-rating
  predictor (``ml_core.rating``), the user's part folded in from the given ratings; None for unknown movies.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .serving_artifacts import read_manifest
from .serving_engine import Bundle, RecommendationList, recommend_item, recommend_user  # noqa: F401

log = logging.getLogger(__name__)

GPU_MIN_RAM = 16 * 2**30
CPU_MIN_RAM = 8 * 2**30


class Tier(enum.IntEnum):
    """The three hardware tiers."""

    TORCH = 1
    ONNX = 2
    LITE = 3

    @property
    def label(self) -> str:
        return {1: "tier1-torch", 2: "tier2-onnx-int8", 3: "tier3-faiss-tfidf"}[int(self)]


def total_ram_bytes() -> int:
    """Physical memory of the machine (or the cgroup limit when lower)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            ram = min(ram, int(raw))
    return ram


def cuda_available() -> bool:
    """True when torch sees a CUDA device (torch is imported only to ask)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def detect_tier(*, ram_bytes: int | None = None, cuda: bool | None = None) -> Tier:
    """CUDA and >= 16 GB -> Tier 1; >= 8 GB -> Tier 2; otherwise Tier 3."""
    ram = total_ram_bytes() if ram_bytes is None else ram_bytes
    if ram >= GPU_MIN_RAM and (cuda_available() if cuda is None else cuda):
        return Tier.TORCH
    return Tier.ONNX if ram >= CPU_MIN_RAM else Tier.LITE


def parse_tier(value: str | int | Tier | None) -> Tier | None:
    """'1'/'2'/'3', 'torch'/'onnx'/'lite', a Tier, or ''/None (= detect); ValueError names bad values."""
    if value is None or value == "":
        return None
    if isinstance(value, Tier):
        return value
    text = str(value).strip().lower().removeprefix("tier")
    names = {"1": Tier.TORCH, "torch": Tier.TORCH, "2": Tier.ONNX, "onnx": Tier.ONNX, "3": Tier.LITE,
             "lite": Tier.LITE}
    if text not in names:
        raise ValueError(f"serving tier {value!r} not understood: use 1, 2, 3 (or torch, onnx, lite)")
    return names[text]


class ItemPopularity:
    """A live view of the bundle's interaction counts in the two scales the online learner uses."""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle
        self.counts = bundle.popularity  # shared with the bundle: updates are seen by the next request

    @property
    def item_scores(self) -> np.ndarray:
        return np.log1p(self.counts).astype(np.float32)

    @item_scores.setter
    def item_scores(self, scores: np.ndarray) -> None:
        values = np.expm1(np.asarray(scores, np.float64))
        self.counts[: len(values)] = values[: len(self.counts)]
        self._bundle.refresh_popularity()


class Engine:
    """One process's recommender: a loaded bundle plus hot-swappable weights and online state."""

    def __init__(self, directory: Path, tier: Tier) -> None:
        self.directory = Path(directory)
        self.tier = tier
        self.state_version = 0
        self._lock = threading.Lock()
        self._online = None
        self.stats = {"requests": 0, "gated": 0, "cold_start": 0}
        self._bundle = Bundle.load(self.directory, int(tier))

    # ---- identity -------------------------------------------------------------------------------
    @property
    def tier_name(self) -> str:
        return self.tier.label

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def manifest_version(self) -> str:
        return self._bundle.manifest.get("version", "")

    @property
    def weights_version(self) -> str:
        return self._bundle.weights_version

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self._bundle.model_names, self._bundle.weights.tolist(), strict=True))

    @property
    def n_items(self) -> int:
        return len(self._bundle.movie_ids)

    @property
    def movie_ids(self) -> list[int]:
        return self._bundle.movie_ids

    @property
    def item_raw_ids(self) -> list[int]:
        return self._bundle.movie_ids

    def item_index(self, movie_id: int) -> int:
        return self._bundle.index.get(int(movie_id), -1)

    def item_indices(self, movie_ids: Sequence[int]) -> np.ndarray:
        return np.asarray([self._bundle.index.get(int(m), -1) for m in movie_ids], np.int64)

    def metadata(self, movie_id: int) -> dict[str, Any] | None:
        i = self.item_index(movie_id)
        return None if i < 0 else self._bundle.meta[i]

    # ---- requests ---------------------------------------------------------------------------------
    def recommend_user(self, history: Sequence[int], **kwargs: Any) -> RecommendationList:
        """Recommendations for a history of movie ids (oldest first); see serving_engine.recommend_user."""
        self.stats["requests"] += 1
        result = recommend_user(self._bundle, history, **kwargs)
        self.stats["gated"] += int(result.gated)
        self.stats["cold_start"] += int(result.cold_start)
        return result

    def recommend_item(self, movie_id: int, **kwargs: Any) -> RecommendationList:
        """Movies to watch after one movie; KeyError when the movie is not in the serving catalogue."""
        self.stats["requests"] += 1
        return recommend_item(self._bundle, movie_id, **kwargs)

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
        return predictor.predict_movies(history, ratings, movie_ids)

    def predict_rating(self, history: Sequence[int], ratings: Sequence[float], movie_id: int) -> float | None:
        """One movie's predicted rating for this history (see predict_ratings)."""
        return self.predict_ratings(history, ratings, [movie_id])[0]

    def fairness_summary(self) -> dict[str, Any]:
        return self._bundle.auditor.summary()

    # ---- hot reload --------------------------------------------------------------------------------
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
        with self._lock:
            fresh = Bundle.load(self.directory, int(self.tier))
            self._bundle = fresh
            self._online = None
        log.info("serving bundle reloaded: version %s", version)
        return True

    # ---- online learning ---------------------------------------------------------------------------
    @property
    def ranker(self) -> Any:
        return self._bundle.ranker

    @property
    def popularity(self) -> ItemPopularity:
        return ItemPopularity(self._bundle)

    def bump_state_version(self, version: int | None = None) -> int:
        self.state_version = self.state_version + 1 if version is None else int(version)
        return self.state_version

    def make_online_coordinator(self, config: Any = None) -> Any:
        """An OnlineLearningCoordinator sharing this engine's ranker and counters."""
        from .online import OnlineLearningCoordinator

        return OnlineLearningCoordinator(n_items=self.n_items, ranker=self.ranker, config=config,
                                         item_counts=self._bundle.popularity)

    def load_online_state(self, blob: bytes) -> None:
        """Swap in counters and ranker weights published by an online learner (no restart)."""
        if self._online is None:
            self._online = self.make_online_coordinator()
        self._online.load_state_bytes(blob)
        self._bundle.popularity[:] = self._online.item_counts[: self.n_items]
        self._bundle.refresh_popularity()
        self.bump_state_version()


def limit_threads() -> None:
    """One BLAS/OpenMP thread per serving process: requests are small, and on 2 shared cores threads only
    contend (a 100 x 64 matmul went from 0.05 ms to 30 ms under load with the default thread pool)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    torch = sys.modules.get("torch")  # torch keeps its own pool: threadpoolctl leaves it at the core count
    if torch is not None:
        torch.set_num_threads(1)


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
