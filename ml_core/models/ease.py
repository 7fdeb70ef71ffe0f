"""EASE (Steck 2019): closed-form shallow autoencoder with a zero-diagonal item-item matrix."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..data import Interactions
from ..interface import FitOptions, FitReport, UserContext
from ..tuning import Distribution, LogFloat
from .base import RecommenderBase, empty_rows, history_matrix


@dataclass(frozen=True)
class EASEConfig:
    """EASE^R; `reg` is the L2 weight lambda added to the Gram matrix diagonal."""

    reg: float = 250.0  # lambda


class EASE(RecommenderBase):
    """B = I - P / diag(P) with P = (X'X + lambda I)^-1; a user's scores are x_u B.

    Users unseen in training are folded in for free: their history vector times B.
    """

    name = "ease"
    config_cls = EASEConfig
    # Steck (2019) tunes lambda per dataset (about 200-1000 on ML-20M, Netflix, MSD); RecBole's grid spans 1-2000
    search_space: ClassVar[dict[str, Distribution]] = {"reg": LogFloat(1.0, 1e4)}

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        start = time.perf_counter()
        self._remember_data(data)
        x = data.matrix()
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config.reg
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.weights = b.astype(np.float32)
        return FitReport(epochs=1, seconds=time.perf_counter() - start, n_parameters=int(b.size))

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        hist = history_matrix(contexts, self.n_items)
        scores = np.asarray(hist @ self.weights, dtype=np.float32)
        scores[empty_rows(contexts, self.n_items)] = np.nan
        return scores

    def export(self, directory: Path) -> None:
        self._save(directory, {"weights": self.weights})

    @classmethod
    def load(cls, directory: Path) -> EASE:
        model, content = cls._load_common(directory)
        model.weights = content["tensors"]["weights"]
        return model
