"""Recommendation models, split by subdomain and re-exported here."""

from .artifacts import ModelArtifact  # noqa: E402,F401  (serving)
from .builds import BackgroundBuild  # noqa: E402,F401  (the build that follows set-up)
from .fairness import FairnessReport  # noqa: E402,F401  (nightly fairness report)
from .online import OnlineCheckpoint  # noqa: E402,F401  (online learning)
from .pipeline import PipelineRun  # noqa: E402,F401  (nightly lakehouse job)
from .weights import EnsembleWeights  # noqa: E402,F401  (serving)
