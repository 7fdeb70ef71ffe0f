"""Content retrieval: a scikit-learn TF-IDF sparse index over title, overview, genres, keywords, tags and director.

Free text (title, overview) is split into words; categorical fields become prefixed tokens
(``g:science_fiction``, ``d:ridley_scott``, ``k:space``, ``t:dark``) so a genre never collides
with the same word in an overview. Rows are L2-normalised, so a dot product is a cosine.
Serving needs only numpy/scipy (the matrix, precomputed neighbours and a 128-d LSA projection for
scoring candidates); scikit-learn is used to build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

WORD = re.compile(r"[a-z0-9]+")
N_NEIGHBOURS = 50
LSA_DIMS = 128


def _tokens(prefix: str, values: Iterable[Any] | None) -> list[str]:
    out = []
    for v in values or []:
        if v:
            out.append(prefix + "_".join(WORD.findall(str(v).lower())))
    return out


def document(meta: dict[str, Any]) -> str:
    """One item's text: words of title and overview plus prefixed genre/director/keyword/tag tokens."""
    title = re.sub(r"\(\d{4}\)\s*$", "", str(meta.get("title") or ""))
    words = WORD.findall(f"{title} {meta.get('overview') or ''}".lower())
    directors = meta.get("directors") or ([meta["director"]] if meta.get("director") else [])
    cats = (_tokens("g:", meta.get("genres")) * 2 + _tokens("d:", directors) * 2
            + _tokens("k:", meta.get("keywords")) + _tokens("t:", (meta.get("tags") or [])[:20]))
    return " ".join(words + cats)


class ContentIndex:
    """Item x term TF-IDF matrix (CSR, rows L2-normalised) plus each item's top content neighbours."""

    def __init__(self, matrix: sparse.csr_matrix, neighbours: np.ndarray, neighbour_scores: np.ndarray,
                 dense: np.ndarray) -> None:
        self.matrix = matrix
        self.dense = dense  # (n_items, d) float32, L2-normalised LSA projection for fast candidate scoring
        self.neighbours = neighbours  # int64 (n_items, N_NEIGHBOURS), -1 padded
        self.neighbour_scores = neighbour_scores  # float32, same shape

    @classmethod
    def build(cls, metadata: list[dict[str, Any]], *, n_neighbours: int = N_NEIGHBOURS) -> ContentIndex:
        """Fit TF-IDF over one metadata dict per item (index order) and precompute neighbours."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [document(m) for m in metadata]
        vectorizer = TfidfVectorizer(token_pattern=r"[^\s]+", stop_words="english", sublinear_tf=True,
                                     min_df=1, max_df=0.5, max_features=60_000, dtype=np.float32)
        if not any(docs):
            docs = ["_empty_"] * len(docs)
        matrix = vectorizer.fit_transform(docs).tocsr().astype(np.float32)
        neighbours, scores = _top_neighbours(matrix, n_neighbours)
        return cls(matrix, neighbours, scores, _lsa(matrix))

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[0])

    def similar(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Precomputed most similar items to one item."""
        items, scores = self.neighbours[item], self.neighbour_scores[item]
        keep = items >= 0
        return items[keep][:n], scores[keep][:n]

    def profile_scores(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Cosine-like content score of every item against the (weighted) history profile; float32 (n_items,)."""
        h = np.asarray(history, np.int64)
        ok = (h >= 0) & (h < self.n_items)
        if not ok.any():
            return np.zeros(self.n_items, np.float32)
        w = np.ones(ok.sum(), np.float32) if weights is None else np.asarray(weights, np.float32)[ok]
        profile = sparse.csr_matrix(w[None, :]) @ self.matrix[h[ok]]
        norm = np.sqrt(profile.multiply(profile).sum())
        return np.asarray((self.matrix @ profile.T).toarray()).ravel() / max(float(norm), 1e-9)

    def query_profile(self, history: np.ndarray, n: int, weights: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n items for a history profile (history items included; the caller excludes them)."""
        scores = self.profile_scores(history, weights)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.zeros(0, np.int64)
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sparse.save_npz(directory / "tfidf.npz", self.matrix)
        np.savez(directory / "tfidf_neighbours.npz", items=self.neighbours, scores=self.neighbour_scores,
                 dense=self.dense)

    @classmethod
    def load(cls, directory: Path) -> ContentIndex:
        matrix = sparse.load_npz(directory / "tfidf.npz").tocsr()  # scipy loads with allow_pickle=False
        with np.load(directory / "tfidf_neighbours.npz", allow_pickle=False) as npz:
            return cls(matrix, npz["items"], npz["scores"], npz["dense"])


def _lsa(matrix: sparse.csr_matrix, dims: int = LSA_DIMS) -> np.ndarray:
    """Truncated SVD of the TF-IDF matrix (latent semantic analysis), rows L2-normalised."""
    from sklearn.decomposition import TruncatedSVD

    k = min(dims, min(matrix.shape) - 1)
    if k < 1:
        return np.zeros((matrix.shape[0], 1), np.float32)
    dense = TruncatedSVD(n_components=k, random_state=0).fit_transform(matrix).astype(np.float32)
    normed: np.ndarray = dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    return normed


def _top_neighbours(matrix: sparse.csr_matrix, n: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Each row's n most cosine-similar other rows, computed in blocks to bound memory."""
    n_items = matrix.shape[0]
    n = min(n, max(n_items - 1, 0))
    items = np.full((n_items, max(n, 1)), -1, np.int64)
    scores = np.zeros((n_items, max(n, 1)), np.float32)
    if n == 0:
        return items, scores
    t = matrix.T.tocsc()
    for start in range(0, n_items, block):
        sims = (matrix[start : start + block] @ t).toarray()
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -1.0
        top = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        items[start : start + len(rows)] = np.take_along_axis(top, order, axis=1)
        scores[start : start + len(rows)] = np.take_along_axis(top_scores, order, axis=1)
    return items, scores
