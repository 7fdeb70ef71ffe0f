"""Stage 1 of serving: candidate retrieval from embeddings (FAISS), content (TF-IDF) and a knowledge graph.

Each retriever returns ``(item_indices, scores)``; :func:`union` merges them and keeps,
for every candidate, the set of sources that proposed it (shown in explain payloads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .faiss_index import EmbeddingIndex
from .knowledge_graph import KnowledgeGraph
from .tfidf import ContentIndex


@dataclass
class Candidates:
    """Candidate item indices (round-robin order over sources) and the per-source lists they came from."""

    items: np.ndarray  # int64 (n,)
    lists: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[int, list[str]] = field(default_factory=dict)  # items added later (e.g. filter top-up)

    def __len__(self) -> int:
        return len(self.items)

    def sources_of(self, item: int) -> list[str]:
        """Which retrievers proposed ``item`` (computed on demand: explain payloads only)."""
        found = [name for name, items in self.lists.items() if (items == item).any()]
        return found or self.extra.get(int(item), [])

    @property
    def sources(self) -> dict[int, list[str]]:
        return {int(i): self.sources_of(int(i)) for i in self.items.tolist()}


def union(results: dict[str, tuple[np.ndarray, np.ndarray | None]], *, exclude: np.ndarray | None = None,
          limit: int | None = None) -> Candidates:
    """Merge per-source ranked lists round-robin by rank (every source represented), dropping ``exclude``.

    Vectorised: items are ordered by (rank, source order), and the first occurrence of each is kept.
    """
    lists = {name: np.asarray(items, np.int64).ravel() for name, (items, _) in results.items()}
    parts = [(items, np.arange(len(items)), np.full(len(items), j)) for j, items in enumerate(lists.values())]
    if not parts:
        return Candidates(np.zeros(0, np.int64), lists)
    items = np.concatenate([p[0] for p in parts])
    ranks = np.concatenate([p[1] for p in parts])
    source = np.concatenate([p[2] for p in parts])
    order = np.lexsort((source, ranks))
    items = items[order]
    keep = items >= 0
    if exclude is not None and len(exclude):
        keep &= ~np.isin(items, np.asarray(exclude, np.int64))
    items = items[keep]
    _, first = np.unique(items, return_index=True)
    merged = items[np.sort(first)]
    if limit is not None:
        merged = merged[:limit]
    return Candidates(merged, lists)


__all__ = ["Candidates", "ContentIndex", "EmbeddingIndex", "KnowledgeGraph", "union"]
