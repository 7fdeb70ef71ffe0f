"""Real training on ml-100k (slow): every model clears popularity by a margin on the test split."""

import pytest

from ml_core.data import SHARED_DATA, load_dataset
from ml_core.evaluation import evaluate, leave_one_out
from ml_core.interface import FitOptions
from ml_core.registry import MODELS
from ml_core.tuning import fit_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (SHARED_DATA / "ml-100k" / "u.data").exists(), reason="ml-100k not available")]

MARGIN = 1.3  # at least 30% above popularity's NDCG@10


@pytest.fixture(scope="module")
def split():
    import torch

    torch.set_num_threads(1)
    return leave_one_out(load_dataset("ml-100k"), seed=42)


@pytest.fixture(scope="module")
def popularity_ndcg(split):
    model, _, _ = fit_config(MODELS["popularity"], MODELS["popularity"].config_cls(), split, FitOptions(progress=False))
    return evaluate(model, split, "test", full_only=True)["ndcg@10"]


@pytest.mark.parametrize("name", ["itemknn", "ease", "lightgcn", "sasrec"])
def test_model_clears_popularity_by_a_margin(name, split, popularity_ndcg):
    cls = MODELS[name]
    model, _, _ = fit_config(cls, cls.config_cls(), split, FitOptions(seed=42, progress=False))  # the defaults
    ndcg = evaluate(model, split, "test", full_only=True)["ndcg@10"]
    assert ndcg > MARGIN * popularity_ndcg, (name, ndcg, popularity_ndcg)
