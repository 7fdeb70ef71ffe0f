"""Shared slow check for the four torch models: train on ml-100k and clear popularity's NDCG@10."""

from __future__ import annotations

from typing import Any

import pytest

from ml_core.data import SHARED_DATA, load_dataset
from ml_core.evaluation import evaluate, leave_one_out
from ml_core.interface import FitOptions
from ml_core.models.popularity import Popularity

needs_ml100k = pytest.mark.skipif(not (SHARED_DATA / "ml-100k" / "u.data").exists(), reason="ml-100k not available")
MARGIN = 1.2  # at least 20% above popularity's test NDCG@10 (full ranking)


def assert_clears_popularity(model: Any) -> float:
    """Fit with validation early stopping on ml-100k; assert test NDCG@10 > MARGIN x popularity."""
    import torch

    torch.set_num_threads(1)
    split = leave_one_out(load_dataset("ml-100k"), seed=42)
    popularity = Popularity()
    popularity.fit(split.train, FitOptions(progress=False))
    floor = evaluate(popularity, split, "test", full_only=True)["ndcg@10"]
    model.fit(split.train, FitOptions(seed=42, progress=False, validation=split, patience=5))
    ndcg = evaluate(model, split, "test", full_only=True)["ndcg@10"]
    assert ndcg > MARGIN * floor, (model.name, ndcg, floor)
    return ndcg
