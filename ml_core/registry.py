"""Every trainable model by its lowercase name (a plain dict, so "go to definition" works)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .artifacts import ArtifactError, verify_artifact
from .models.base import RecommenderBase
from .models.diffusion import DiffRec, LDiffRec
from .models.ease import EASE
from .models.hyperbolic import HGCF
from .models.itemknn import ItemKNN
from .models.kan import KANRanker
from .models.lightgcn import LightGCN
from .models.neural_ode import NeuralODE
from .models.popularity import Popularity
from .models.sasrec import SASRec, SASRecBCE

MODELS: dict[str, type[RecommenderBase]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "sasrec": SASRec,
    "sasrec_bce": SASRecBCE,
    "lightgcn": LightGCN,
    "kan": KANRanker,
    "neural_ode": NeuralODE,
    "hyperbolic": HGCF,
    "diffusion": DiffRec,
    "ldiffrec": LDiffRec,
}


def load_model(directory: Path) -> Any:
    """Load whichever registered model the folder's manifest names (checksums verified first)."""
    manifest = verify_artifact(directory)
    name = manifest.get("model")
    if name not in MODELS:
        raise ArtifactError(f"{directory}: unknown model {name!r}; known: {sorted(MODELS)}")
    cls: Any = MODELS[name]
    return cls.load(Path(directory))


def capabilities(name: str) -> frozenset[type]:
    """The ml_core.interface protocols a registered model declares (empty for an unknown name)."""
    cls: Any = MODELS.get(name)
    return frozenset(cls.capabilities) if cls is not None else frozenset()
