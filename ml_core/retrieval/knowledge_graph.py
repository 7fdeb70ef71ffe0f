"""A small knowledge graph over the catalogue: franchise (collection), director, genre and era (decade) relations.

Edges are typed; an item's neighbours are ranked by a weighted sum of shared relations
(franchise 1.0, director 0.6, genre Jaccard x 0.3, same era 0.1, popularity as a tie-break)
and precomputed at build time, so serving is a table lookup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

N_NEIGHBOURS = 50
RELATIONS = ("franchise", "director", "genre", "era")
WEIGHTS = {"franchise": 1.0, "director": 0.6, "genre": 0.3, "era": 0.1}


def _labels(values: list[Any]) -> np.ndarray:
    """Integer label per item (-1 for missing) so equality is a vector comparison."""
    codes: dict[Any, int] = {}
    return np.asarray([-1 if not v else codes.setdefault(v, len(codes)) for v in values], np.int64)


class KnowledgeGraph:
    """Per-item entities (franchise, directors, genres, decade) and precomputed typed neighbours."""

    def __init__(self, entities: list[dict[str, Any]], neighbours: np.ndarray, relations: np.ndarray,
                 scores: np.ndarray) -> None:
        self.entities = entities  # per item: {"franchise", "director", "genres", "era"}
        self.neighbours = neighbours  # int64 (n_items, N), -1 padded
        self.relations = relations  # uint8 bitmask per neighbour: 1 franchise, 2 director, 4 genre, 8 era
        self.scores = scores  # float32

    @classmethod
    def build(cls, metadata: list[dict[str, Any]], popularity: np.ndarray | None = None,
              *, n_neighbours: int = N_NEIGHBOURS, block: int = 1024) -> KnowledgeGraph:
        """Entities from one metadata dict per item (index order); neighbours by shared relations."""
        n = len(metadata)
        entities = [{"franchise": m.get("collection") or None,
                     "director": m.get("director") or ((m.get("directors") or [None])[0]),
                     "genres": sorted(m.get("genres") or []),
                     "era": (int(m["year"]) // 10 * 10) if m.get("year") else None} for m in metadata]
        franchise = _labels([e["franchise"] for e in entities])
        director = _labels([e["director"] for e in entities])
        era = _labels([e["era"] for e in entities])
        genre_names = sorted({g for e in entities for g in e["genres"]})
        gidx = {g: i for i, g in enumerate(genre_names)}
        genres = np.zeros((n, max(len(genre_names), 1)), np.float32)
        for i, e in enumerate(entities):
            genres[i, [gidx[g] for g in e["genres"]]] = 1.0
        gcount = genres.sum(1)
        pop = np.zeros(n) if popularity is None else np.log1p(np.asarray(popularity, np.float64))
        tie = 0.01 * pop / max(pop.max(), 1e-9)
        k = max(min(n_neighbours, n - 1), 1)
        neighbours = np.full((n, k), -1, np.int64)
        relations = np.zeros((n, k), np.uint8)
        scores = np.zeros((n, k), np.float32)
        for start in range(0, n, block):
            rows = np.arange(start, min(start + block, n))
            same_f = (franchise[rows, None] == franchise[None]) & (franchise[rows, None] >= 0)
            same_d = (director[rows, None] == director[None]) & (director[rows, None] >= 0)
            same_e = (era[rows, None] == era[None]) & (era[rows, None] >= 0)
            inter = genres[rows] @ genres.T
            jacc = inter / np.maximum(gcount[rows, None] + gcount[None] - inter, 1.0)
            s = (WEIGHTS["franchise"] * same_f + WEIGHTS["director"] * same_d + WEIGHTS["genre"] * jacc
                 + WEIGHTS["era"] * same_e + tie[None])
            s[np.arange(len(rows)), rows] = -np.inf
            top = np.argpartition(-s, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            bits = (same_f * 1 + same_d * 2 + (inter > 0) * 4 + same_e * 8).astype(np.uint8)
            neighbours[rows] = top
            relations[rows] = np.take_along_axis(bits, top, axis=1)
            scores[rows] = np.take_along_axis(s, top, axis=1)
        return cls(entities, neighbours, relations, scores)

    def similar(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n strongest related items of one item."""
        items, scores = self.neighbours[item], self.scores[item]
        keep = (items >= 0) & (self.relations[item] > 0)
        return items[keep][:n], scores[keep][:n]

    def relation_names(self, item: int, other: int) -> list[str]:
        """Which relations two items share (franchise, director, genre, era)."""
        a, b = self.entities[item], self.entities[other]
        out = []
        if a["franchise"] and a["franchise"] == b["franchise"]:
            out.append("franchise")
        if a["director"] and a["director"] == b["director"]:
            out.append("director")
        if set(a["genres"]) & set(b["genres"]):
            out.append("genre")
        if a["era"] and a["era"] == b["era"]:
            out.append("era")
        return out

    def neighbourhood(self, item: int, n: int = 10) -> dict[str, list[tuple[int, float]]]:
        """Neighbours grouped by their strongest shared relation: {relation: [(item, score), ...]}."""
        out: dict[str, list[tuple[int, float]]] = {r: [] for r in RELATIONS}
        for other, bits, score in zip(self.neighbours[item].tolist(), self.relations[item].tolist(),
                                      self.scores[item].tolist(), strict=False):
            if other < 0 or not bits:
                continue
            rel = RELATIONS[(bits & -bits).bit_length() - 1]  # lowest set bit = strongest relation
            if len(out[rel]) < n:
                out[rel].append((other, float(score)))
        return out

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "kg_entities.json").write_text(json.dumps(self.entities))
        np.savez(directory / "kg_neighbours.npz", items=self.neighbours, relations=self.relations,
                 scores=self.scores)

    @classmethod
    def load(cls, directory: Path) -> KnowledgeGraph:
        entities = json.loads((directory / "kg_entities.json").read_text())
        with np.load(directory / "kg_neighbours.npz", allow_pickle=False) as npz:
            return cls(entities, npz["items"], npz["relations"], npz["scores"])
