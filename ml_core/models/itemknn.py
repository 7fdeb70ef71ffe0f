"""Item-based k-nearest neighbours (cosine similarity on the binary user-item matrix)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import sparse

from ..data import Interactions
from ..interface import FitOptions, FitReport, UserContext
from ..tuning import Categorical, Distribution, Int
from .base import RecommenderBase, empty_rows, history_matrix


@dataclass(frozen=True)
class ItemKNNConfig:
    """Cosine ItemKNN; each item keeps its k most similar neighbours."""

    k: int = 100  # neighbours kept per item
    shrink: float = 0.0  # similarity shrinkage: dot / (|a||b| + shrink)


class ItemKNN(RecommenderBase):
    """Score of item j = sum over history items i of sim(i, j), where each item i keeps only its k nearest j."""

    name = "itemknn"
    config_cls = ItemKNNConfig
    # RecBole's ItemKNN grid: k 10..400, shrink 0..1000 (Sarwar et al. 2001 keep tens to hundreds of neighbours)
    search_space: ClassVar[dict[str, Distribution]] = {"k": Int(10, 1000, log=True),
                                    "shrink": Categorical((0.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0))}

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        start = time.perf_counter()
        self._remember_data(data)
        x = data.matrix()
        co = (x.T @ x).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.config.shrink + 1e-8)
        np.fill_diagonal(sim, 0.0)
        k = min(self.config.k, self.n_items - 1)
        if k < self.n_items - 1:  # keep the top-k neighbours of every item (row i -> its neighbours j)
            drop = np.argpartition(-sim, kth=k, axis=1)[:, k:]
            np.put_along_axis(sim, drop, 0.0, axis=1)
        self.sim = sim.astype(np.float32)
        return FitReport(epochs=1, seconds=time.perf_counter() - start, n_parameters=int(np.count_nonzero(sim)))

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        hist = history_matrix(contexts, self.n_items)
        scores = np.asarray(hist @ self.sim, dtype=np.float32)
        scores[empty_rows(contexts, self.n_items)] = np.nan
        return scores

    def export(self, directory: Path) -> None:
        s = sparse.csr_matrix(self.sim)
        self._save(directory, {"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int64),
                               "data": s.data.astype(np.float32)})

    @classmethod
    def load(cls, directory: Path) -> ItemKNN:
        model, content = cls._load_common(directory)
        t = content["tensors"]
        model.sim = sparse.csr_matrix((t["data"], t["indices"], t["indptr"]),
                                      shape=(model.n_items, model.n_items)).toarray().astype(np.float32)
        return model
