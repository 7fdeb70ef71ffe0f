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
    """Candidate item indices (insertion order) and, per item, the sources that proposed it."""

    items: np.ndarray  # int64 (n,)
    sources: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)


def union(results: dict[str, tuple[np.ndarray, np.ndarray]], *, exclude: np.ndarray | None = None,
          limit: int | None = None) -> Candidates:
    """Merge per-source (items, scores) lists, round-robin by rank so every source is represented.

    ``exclude`` drops items (the user's history); ``limit`` caps the pool size.
    """
    banned = set() if exclude is None else set(np.asarray(exclude, np.int64).tolist())
    sources: dict[int, list[str]] = {}
    order: list[int] = []
    lists = {name: np.asarray(items, np.int64).tolist() for name, (items, _) in results.items()}
    depth = max((len(v) for v in lists.values()), default=0)
    for rank in range(depth):
        for name, items in lists.items():
            if rank >= len(items):
                continue
            item = items[rank]
            if item < 0 or item in banned:
                continue
            if item not in sources:
                sources[item] = []
                order.append(item)
            if name not in sources[item]:
                sources[item].append(name)
    if limit is not None and len(order) > limit:
        order = order[:limit]
    return Candidates(np.asarray(order, np.int64), {i: sources[i] for i in order})


__all__ = ["Candidates", "ContentIndex", "EmbeddingIndex", "KnowledgeGraph", "union"]
