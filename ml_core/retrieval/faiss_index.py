"""Inner-product search over L2-normalised item embeddings: exact (IndexFlatIP) or HNSW for large catalogues."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

HNSW_THRESHOLD = 50_000  # items; below this an exact scan is fast enough (benchmarks/retrieval_scale.py, docs/SCALE.md)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.nan_to_num(np.asarray(x, np.float32)))
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    normed: np.ndarray = x / np.maximum(norms, 1e-12)
    return normed


class EmbeddingIndex:
    """Cosine search over item vectors; ``kind`` is 'flat' (exact) or 'hnsw'."""

    def __init__(self, index: faiss.Index, vectors: np.ndarray, kind: str) -> None:
        self.index = index
        self.vectors = vectors  # (n_items, d) normalised, kept for user-profile queries and explanations
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, *, hnsw_threshold: int = HNSW_THRESHOLD) -> EmbeddingIndex:
        """Index the rows of ``vectors`` (n_items, d); HNSW (M=32, efSearch=128) at or above the threshold."""
        import faiss

        vecs = _normalise(vectors)
        d = vecs.shape[1]
        index: faiss.Index
        if len(vecs) >= hnsw_threshold:
            index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
            kind = "hnsw"
        else:
            index = faiss.IndexFlatIP(d)
            kind = "flat"
        index.add(vecs)
        log.info("faiss %s index over %d items x %d dims", kind, len(vecs), d)
        return cls(index, vecs, kind)

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-n (items, cosine scores) for one query vector; -1 items pad short results."""
        q = _normalise(np.asarray(query, np.float32).reshape(1, -1))
        scores, items = self.index.search(q, min(n, self.index.ntotal))
        return items[0].astype(np.int64), scores[0]

    def user_query(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
        """A user vector: the (weighted) mean of the history items' normalised vectors, or None."""
        h = np.asarray(history, np.int64)
        ok = (h >= 0) & (h < len(self.vectors))
        if not ok.any():
            return None
        w = np.ones(ok.sum(), np.float32) if weights is None else np.asarray(weights, np.float32)[ok]
        query: np.ndarray = (self.vectors[h[ok]] * w[:, None]).sum(0) / max(float(w.sum()), 1e-6)
        return query

    def similar(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to one item (the item itself removed)."""
        items, scores = self.search(self.vectors[item], n + 1)
        keep = items != item
        return items[keep][:n], scores[keep][:n]

    def save(self, directory: Path) -> None:
        """faiss.index (faiss' own binary format, not pickle) and vectors.npy."""
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / "faiss.index"))
        np.save(directory / "vectors.npy", self.vectors, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> EmbeddingIndex:
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time: threads only add overhead
        index = faiss.read_index(str(directory / "faiss.index"))
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        return cls(index, vectors, "hnsw" if hasattr(index, "hnsw") else "flat")
