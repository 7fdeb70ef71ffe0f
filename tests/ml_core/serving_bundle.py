"""A tiny synthetic serving bundle (real models, real indexes) shared by the serving tests.

Four genre clusters of 10 movies each; every user mostly watches one cluster in a fixed order, so
the next movie of the cluster is the obvious recommendation. Movie ids start at 101.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GENRES = ["Sci-Fi", "Drama", "Comedy", "Horror"]
DIRECTORS = ["Ridley Scott", "Jane Campion", "Harold Ramis", "John Carpenter"]
WORDS = ["space alien ship crew", "family grief letters", "wedding party prank", "night killer house"]
N_PER_GENRE = 10
MODELS = ["sasrec", "lightgcn", "ease", "diffusion"]  # diffusion has an ONNX export (Tier 2 parity)


def tiny_metadata() -> dict[int, dict[str, Any]]:
    meta = {}
    for g, genre in enumerate(GENRES):
        for j in range(N_PER_GENRE):
            movie_id = 101 + g * N_PER_GENRE + j
            meta[movie_id] = {"title": f"{genre} film {j} ({1980 + 2 * j})", "year": 1980 + 2 * j,
                              "genres": [genre], "director": DIRECTORS[g] if j % 2 == 0 else f"Director {g}-{j}",
                              "collection": f"{genre} saga" if j < 3 else None,
                              "overview": f"{WORDS[g]} story number {j}", "keywords": [WORDS[g].split()[0]],
                              "tags": [], "vote_average": 7.5 if j == 0 else 6.0, "vote_count": 500}
    return meta


def tiny_interactions(seed: int = 0) -> Any:
    from ml_core.data import interactions_from_arrays

    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(1, 121):
        g = u % len(GENRES)
        start = int(rng.integers(0, 3))
        seq = [101 + g * N_PER_GENRE + (start + j) % N_PER_GENRE for j in range(7)]
        if u % 5 == 0:  # a little cross-genre noise
            seq.insert(3, 101 + ((g + 1) % len(GENRES)) * N_PER_GENRE + int(rng.integers(0, N_PER_GENRE)))
        for t, m in enumerate(seq):
            users.append(u)
            items.append(m)
            times.append(1_000_000 + u * 1000 + t * 10)
    return interactions_from_arrays(np.array(users), np.array(items), np.array(times),
                                    np.full(len(users), 4.0), name="tiny")


def build_tiny_bundle(root: Path) -> dict[str, Any]:
    """Train the tiny models (2 epochs) and write a full serving bundle under root/serving."""
    import torch

    from ml_core.serving_build import build_serving

    torch.set_num_threads(1)
    return build_serving(tiny_interactions(), tiny_metadata(), root / "serving", names=MODELS,
                         model_root=root / "models", quick=True, onnx=True)
