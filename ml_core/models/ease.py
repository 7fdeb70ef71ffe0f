"""EASE (Steck 2019): closed-form shallow autoencoder with a zero-diagonal item-item matrix."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import Interactions
from ..interface import FitOptions, FitReport, UserContext
from ..tuning import Distribution, LogFloat
from .base import RecommenderBase, empty_rows, history_matrix


@dataclass(frozen=True)
class EASEConfig:
    """EASE^R; `reg` is the L2 weight lambda added to the Gram matrix diagonal.

    A catalogue of more than `max_items` items is solved densely over its `max_items` most interacted items (the
    head); every other item (the remainder) is scored by the ridge regression of its column on the head's
    (the same objective without the zero-diagonal constraint it does not need), keeping its `remainder_k`
    largest coefficients: memory O(max_items^2 + remainder x k), never n_items^2.
    """

    reg: float = 250.0  # lambda
    max_items: int = 15_000  # 15k x 15k float64 = 1.8 GB per matrix; the solve is O(max_items^3)
    remainder_k: int = 200


class EASE(RecommenderBase):
    """B = I - P / diag(P) with P = (X'X + lambda I)^-1; a user's scores are x_u B.

    Users unseen in training are folded in for free: their history vector times B.
    """

    name = "ease"
    config_cls = EASEConfig
    # Steck (2019) tunes lambda per dataset (about 200-1000 on ML-20M, Netflix, MSD); RecBole's grid spans 1-2000
    search_space: ClassVar[dict[str, Distribution]] = {"reg": LogFloat(1.0, 1e4)}

    head: np.ndarray | None = None  # item indices solved densely, when the catalogue is larger than max_items
    remainder: np.ndarray | None = None
    remainder_weights: Any = None  # CSR (head, remainder): each remainder item's regression on the head

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        start = time.perf_counter()
        self._remember_data(data)
        x = data.matrix()
        if self.n_items <= self.config.max_items:
            self.weights, self.head = _solve(x, self.config.reg)[0], None
            return FitReport(epochs=1, seconds=time.perf_counter() - start, n_parameters=int(self.weights.size))
        counts = np.asarray(x.sum(axis=0)).ravel()
        order = np.argsort(-counts, kind="stable")
        self.head = np.sort(order[: self.config.max_items])
        self.remainder = np.sort(order[self.config.max_items:])
        x = x.tocsc()
        head_x = x[:, self.head]
        self.weights, p = _solve(head_x, self.config.reg)
        self.remainder_weights = _regress(p, (head_x.T @ x[:, self.remainder]).tocsc(), self.config.remainder_k)
        return FitReport(epochs=1, seconds=time.perf_counter() - start,
                         n_parameters=int(self.weights.size + self.remainder_weights.nnz))

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        scores = self.score_rows(history_matrix(contexts, self.n_items))
        scores[empty_rows(contexts, self.n_items)] = np.nan
        return scores

    def score_rows(self, hist: Any) -> np.ndarray:
        """(B, n_items) float32 scores of binary history rows (a CSR (B, n_items)); an empty row scores 0."""
        if self.head is None:
            return np.asarray(hist @ self.weights, dtype=np.float32)
        known_head = hist[:, self.head]
        scores = np.empty((hist.shape[0], self.n_items), np.float32)
        scores[:, self.head] = known_head @ self.weights
        scores[:, self.remainder] = (known_head @ self.remainder_weights).toarray()
        return scores

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted weights as plain arrays (the remainder's CSR in its three parts); `from_arrays` inverts it."""
        if self.head is None:
            return {"weights": self.weights}
        r = self.remainder_weights
        return {"weights": self.weights, "head": self.head.astype(np.int64),
                "remainder": np.asarray(self.remainder, np.int64), "r_indptr": r.indptr.astype(np.int64),
                "r_indices": r.indices.astype(np.int64), "r_data": r.data.astype(np.float32)}

    @classmethod
    def from_arrays(cls, t: dict[str, np.ndarray], n_items: int, config: EASEConfig | None = None) -> EASE:
        """A scoring EASE from `arrays()` output (no training data attached)."""
        model = cls(config)
        model.n_items = int(n_items)
        model._set_arrays(t)
        return model

    def _set_arrays(self, t: dict[str, np.ndarray]) -> None:
        """The scoring arrays from `arrays()` output: the weights, and the head and sparse remainder if any."""
        from scipy import sparse

        self.weights = t["weights"]
        if "head" in t:
            self.head, self.remainder = t["head"], t["remainder"]
            self.remainder_weights = sparse.csr_matrix((t["r_data"], t["r_indices"], t["r_indptr"]),
                                                       shape=(len(self.head), len(self.remainder)))

    def export(self, directory: Path) -> None:
        self._save(directory, self.arrays())

    @classmethod
    def load(cls, directory: Path) -> EASE:
        model, content = cls._load_common(directory)
        model._set_arrays(content["tensors"])
        return model


REMAINDER_BLOCK = 2048  # remainder items regressed at once: a (head, block) float64 block in memory


def _solve(x: Any, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """EASE's B (float32, zero diagonal) over x's columns, and P = (X'X + lambda I)^-1 (float64)."""
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += reg
    p = np.linalg.inv(gram)
    del gram
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32), p


def _regress(p: np.ndarray, cooccurrence: Any, k: int) -> Any:
    """CSR (head, remainder): P @ X_head' X_rem (the ridge solution of each remainder column on the head), keeping
    each column's k largest coefficients by magnitude; computed a block of columns at a time."""
    from scipy import sparse

    h, r = cooccurrence.shape
    k = min(k, h)
    blocks = []
    for lo in range(0, r, REMAINDER_BLOCK):
        dense = p @ cooccurrence[:, lo:lo + REMAINDER_BLOCK].toarray()  # (h, block)
        if k < h:
            drop = np.argpartition(-np.abs(dense), kth=k, axis=0)[k:]
            np.put_along_axis(dense, drop, 0.0, axis=0)
        blocks.append(sparse.csc_matrix(dense.astype(np.float32)))
    out = sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((h, 0), dtype=np.float32)
    out.eliminate_zeros()
    return out
