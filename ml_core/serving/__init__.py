"""Serving: ``load_engine(artifacts_dir, tier)`` -> :class:`Engine` (retrieval -> ensemble ranking -> re-ranking),
and the online learner whose states the engine takes while it serves.

The names below are the package's public contract (the only ``ml_core`` serving names the apps import);
everything else (the bundle, the pipeline's steps, the caches) is internal to it. Modules: ``tiers`` (hardware
tiers), ``bundle`` (a loaded serving bundle), ``pipeline`` (the request path), ``cache`` (per-request user states
and ranked pools), ``explain`` (the sentences), ``engine`` (the facade), ``online`` (the online learner), ``policy`` (a candidate
policy's slate distribution on a logged request, for off-policy evaluation).
"""

from ..artifacts import ArtifactError, sha256_file
from ..interface import UserContext
from ..rating import half_stars
from ..retrieval.visual import VisualIndex
from ..serving_artifacts import read_manifest, verify_bundle
from .cache import PoolStore
from .engine import Engine, load_engine
from .online import (
    Holdout,
    OnlineConfig,
    OnlineEvent,
    OnlineLearningCoordinator,
    PublishedState,
    read_published_state,
)
from .pipeline import RecommendationList
from .policy import (
    RequestContext,
    item_popularity,
    policy_scores,
    request_context,
    serving_temperature,
    slate_positions,
)
from .tiers import Tier, detect_tier, parse_tier

__all__ = ["ArtifactError", "Engine", "Holdout", "OnlineConfig", "OnlineEvent", "OnlineLearningCoordinator",
           "PoolStore", "PublishedState", "RecommendationList", "RequestContext", "Tier", "UserContext", "VisualIndex",
           "detect_tier", "half_stars", "item_popularity", "load_engine", "parse_tier", "policy_scores",
           "read_manifest", "read_published_state", "request_context", "serving_temperature", "sha256_file",
           "slate_positions", "verify_bundle"]
