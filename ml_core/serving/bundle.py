"""A loaded serving bundle: the item space, the retrieval indexes, the scorers and the blend (package-private).

Read-only while it serves, except through three doors the :class:`~ml_core.serving.engine.Engine` opens: the
blend weights (``set_weights``), the live interaction counts and the online ranker's weights
(``apply_online_state``). Each of them moves ``state_token``, which the ranked-pool cache keys on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..interface import OnlineRanker, UserStateScorer
from ..rerank import FairnessAuditor, ItemFacts
from ..retrieval import ContentIndex, EmbeddingIndex, KnowledgeGraph
from ..serving_artifacts import read_manifest
from .cache import PoolStore, UserStateCache
from .tiers import serving_device

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.05  # on the [0, 1]-scaled, boosted relevance of the re-ranked pool


class Bundle:
    """Everything one engine serves from, loaded from a serving bundle folder."""

    tier: int
    manifest: dict[str, Any]
    device: str
    movie_ids: list[int]
    meta: list[dict[str, Any]]
    index: dict[int, int]
    popularity: np.ndarray  # float64 interaction counts per serving item (live: online learning replaces it)
    popular_order: np.ndarray
    ensemble: dict[str, Any]
    gating_threshold: float
    temperature: float
    faiss: EmbeddingIndex
    content: ContentIndex
    kg: KnowledgeGraph
    facts: ItemFacts
    auditor: FairnessAuditor
    genre_column: dict[str, int]
    model_names: list[str]
    weights: np.ndarray
    weights_version: str
    users: dict[int, int]
    rating: Any

    def __init__(self) -> None:
        self.scorers: dict[str, Any] = {}
        self.state_scorers: set[str] = set()  # names of the UserStateScorer scorers (checked once, at load)
        self.ranker: Any = None
        self.ranker_name: str | None = None  # the model name of ``ranker`` (its row in the model scores)
        self.user_states = UserStateCache()
        self.popularity_digest = b""  # of the counts served (the popular list, cached pools); set by set_counts
        self.shared_pools: PoolStore | None = None  # ranked pools shared with the other processes (Engine.share_pools)
        self.online_version = 0  # the online state last applied (counters and ranker weights)
        self.ranker_digest = b""  # of the online ranker weights served (b"": the bundle's own); set_ranker_weights

    @classmethod
    def load(cls, directory: Path, tier: int, device: str | None = None) -> Bundle:
        """``device``: where Tier 1 places the torch nets (default: CUDA when torch sees a GPU, else CPU)."""
        b = cls()
        directory = Path(directory)
        b.tier, b.manifest = tier, read_manifest(directory)
        b.device = "cpu" if tier == 3 else (device or serving_device(tier))
        items = json.loads((directory / "items.json").read_text())
        b.movie_ids = [int(m) for m in items["movie_ids"]]
        b.meta = items["metadata"]
        b.index = {m: i for i, m in enumerate(b.movie_ids)}
        b.popularity = np.load(directory / "popularity.npy", allow_pickle=False).astype(np.float64)
        b.popular_order = np.argsort(-b.popularity, kind="stable")
        ens = json.loads((directory / "ensemble.json").read_text())
        b.ensemble = ens
        threshold = ens.get("gating_threshold")
        b.gating_threshold = float("inf") if threshold is None else float(threshold)
        b.temperature = float(ens.get("temperature", DEFAULT_TEMPERATURE))
        b.faiss = EmbeddingIndex.load(directory / "retrieval")
        b.content = ContentIndex.load(directory / "retrieval")
        b.kg = KnowledgeGraph.load(directory / "retrieval")
        b.facts = ItemFacts.from_metadata(b.meta, b.popularity)
        b.auditor = FairnessAuditor(b.facts)
        b.genre_column = {g.lower(): j for j, g in enumerate(b.facts.genre_names)}
        names = list(ens.get("models", []))
        b.model_names = [] if tier == 3 else names
        b.weights = np.asarray([ens.get("weights", {}).get(m, 0.0) for m in b.model_names], np.float32)
        b.weights_version = str(ens.get("weights_version", "bundle")) if tier != 3 else "tier3-content"
        b.users = {}
        b.rating = _load_rating(directory)
        if tier != 3:
            b._load_scorers(directory, tier, names, set(ens.get("onnx_models", [])))
        return b

    def _load_scorers(self, directory: Path, tier: int, names: list[str], onnx_names: set[str]) -> None:
        from ..registry import capabilities, load_model

        for name in names:
            # the online learner's ranker weights are swapped in as torch tensors, so an OnlineRanker stays on torch
            if tier == 2 and name in onnx_names and OnlineRanker not in capabilities(name):
                from .. import onnx_export

                self.scorers[name] = onnx_export.load_scorer(directory / "onnx" / name)
            else:
                if tier == 2:
                    log.warning("tier 2: no ONNX export of %s, serving it with torch", name)
                self.scorers[name] = load_model(directory / "models" / name)
                # item-side state is computed once here, not per request; Tier 2's torch fallbacks stay on CPU
                self.scorers[name].prepare_serving(self.device if tier == 1 else "cpu")
        for name, scorer in self.scorers.items():
            if isinstance(scorer, OnlineRanker) and scorer.net is not None:
                self.ranker, self.ranker_name = scorer, name
            if isinstance(scorer, UserStateScorer):  # a runtime protocol check costs ~10-25 us: not per request
                self.state_scorers.add(name)
        first = directory / "models" / names[0] / "vocab.json" if names else None
        if first is not None and first.exists():
            self.users = {int(u): i for i, u in enumerate(json.loads(first.read_text()).get("users", []))}

    @property
    def state_token(self) -> tuple[str, bytes, bytes, bytes]:
        """What the ranked pools depend on besides the request: weights, live counts, online ranker weights.

        Content and published versions only, never a per-process counter: two workers serving the same bundle
        state compute the same token, so they can share pools (``shared_pools``). An online state that leaves
        the served counts and ranker weights as they were (a learning step whose check has not passed yet) keeps
        every pool valid."""
        return self.weights_version, self.weights.tobytes(), self.popularity_digest, self.ranker_digest

    @property
    def share_prefix(self) -> str:
        """The shared pools' key prefix: the bundle version and the tier (whose scorers differ in rounding)."""
        return f"pool:{self.manifest.get('version', '')}:{self.tier}:"

    def set_weights(self, weights: np.ndarray, version: str) -> None:
        self.weights, self.weights_version = weights, version

    def set_counts(self, counts: np.ndarray) -> None:
        """Serve these interaction counts (a fresh array: requests in flight keep the one they read)."""
        fresh = np.zeros(len(self.movie_ids), np.float64)
        n = min(len(fresh), len(counts))
        fresh[:n] = np.asarray(counts, np.float64)[:n]
        self.popularity, self.popular_order = fresh, np.argsort(-fresh, kind="stable")
        # cached ranked pools (retrieval's popular source) are stale
        self.popularity_digest = hashlib.blake2b(fresh.tobytes(), digest_size=16).digest()

    def set_ranker_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load the online learner's published ranker weights into this bundle's ranker (its own copy)."""
        if self.ranker is None or not weights:
            return
        import torch

        self.ranker.net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(weights):
            digest.update(name.encode() + b"=" + np.ascontiguousarray(weights[name]).tobytes())
        self.ranker_digest = digest.digest()


def _load_rating(directory: Path) -> Any:
    """The bundle's explicit-rating predictor (numpy only, every tier), or None for bundles built without one."""
    if not (directory / "rating" / "manifest.json").exists():
        return None
    from ..rating import RatingPredictor

    return RatingPredictor.load(directory / "rating")
