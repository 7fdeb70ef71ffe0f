"""Most-popular baseline: every user gets items ranked by training interaction count."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..data import Interactions
from ..interface import FitOptions, FitReport, UserContext
from .base import RecommenderBase

if TYPE_CHECKING:
    from ..tuning import Distribution


@dataclass(frozen=True)
class PopularityConfig:
    """No hyperparameters: the count of training interactions per item."""


class Popularity(RecommenderBase):
    """Scores = log(1 + training count); the same for every user, known or not (the cold-start list)."""

    name = "popularity"
    config_cls = PopularityConfig
    search_space: ClassVar[dict[str, Distribution]] = {}  # nothing to tune: one trial

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        start = time.perf_counter()
        self._remember_data(data)
        counts = np.bincount(data.items, minlength=data.n_items).astype(np.float32)
        self.item_scores = np.log1p(counts).astype(np.float32)
        return FitReport(epochs=1, seconds=time.perf_counter() - start, n_parameters=0)

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        return np.tile(self.item_scores, (len(contexts), 1))

    def export(self, directory: Path) -> None:
        self._save(directory, {"item_scores": self.item_scores})

    @classmethod
    def load(cls, directory: Path) -> Popularity:
        model, content = cls._load_common(directory)
        model.item_scores = content["tensors"]["item_scores"]
        return model
