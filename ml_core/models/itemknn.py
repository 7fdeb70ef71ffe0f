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
        self.sim = item_neighbours(data.matrix(), k=self.config.k, shrink=self.config.shrink)
        return FitReport(epochs=1, seconds=time.perf_counter() - start, n_parameters=int(self.sim.nnz))

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        hist = history_matrix(contexts, self.n_items)
        scores = np.asarray((hist @ self.sim).toarray(), dtype=np.float32)
        scores[empty_rows(contexts, self.n_items)] = np.nan
        return scores

    def export(self, directory: Path) -> None:
        s = self.sim
        self._save(directory, {"indptr": s.indptr.astype(np.int64), "indices": s.indices.astype(np.int64),
                               "data": s.data.astype(np.float32)})

    @classmethod
    def load(cls, directory: Path) -> ItemKNN:
        model, content = cls._load_common(directory)
        t = content["tensors"]
        model.sim = sparse.csr_matrix((t["data"], t["indices"], t["indptr"]), shape=(model.n_items, model.n_items))
        return model


BLOCK_BYTES = 256 * 2**20  # dense similarity rows computed at once (a block of items x the catalogue, float32)


def item_neighbours(x: sparse.spmatrix, *, k: int, shrink: float) -> sparse.csr_matrix:
    """Cosine item-item similarity (``dot / (|a||b| + shrink)``) keeping each item's ``k`` most similar neighbours,
    as a CSR (n_items, n_items) float32: row i holds i's neighbours. Computed a block of rows at a time, so memory
    is O(block x n_items + n_items x k), never n_items x n_items (60k items: 14 GB dense)."""
    x = sparse.csr_matrix(x, dtype=np.float32)
    n = x.shape[1]
    columns = x.tocsc()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float32).ravel())
    k = min(k, n - 1)
    step = max(1, BLOCK_BYTES // (4 * max(n, 1)))
    indptr, indices, values = [np.zeros(1, np.int64)], [], []
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        co = np.asarray((columns[:, lo:hi].T @ x).toarray(), dtype=np.float32)  # (block, n)
        sim = co / (np.outer(norms[lo:hi], norms) + shrink + 1e-8)
        sim[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        if k < n - 1:  # keep the top-k neighbours of every item in the block
            drop = np.argpartition(-sim, kth=k, axis=1)[:, k:]
            np.put_along_axis(sim, drop, 0.0, axis=1)
        block = sparse.csr_matrix(sim)
        indptr.append(block.indptr[1:].astype(np.int64) + indptr[-1][-1])
        indices.append(block.indices.astype(np.int64))
        values.append(block.data.astype(np.float32))
    return sparse.csr_matrix((np.concatenate(values) if values else np.zeros(0, np.float32),
                              np.concatenate(indices) if indices else np.zeros(0, np.int64),
                              np.concatenate(indptr)), shape=(n, n))
