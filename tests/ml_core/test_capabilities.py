"""Model capabilities are declared, and the declarations are true (ml_core.interface protocols).

Every registered model lists what it can do beyond fit/score/export/load in ``capabilities``; the callers (serving,
online learning, ONNX export) ask ``isinstance(model, Protocol)``. These tests fit a tiny version of every registered
model and check that what each declares is exactly what isinstance finds, and that it works.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from ml_core.evaluation import leave_one_out
from ml_core.interface import (
    EmbeddingModel,
    FitOptions,
    OnlineRanker,
    OnnxExportable,
    OnnxSpec,
    Recommender,
    UserStateScorer,
)
from ml_core.models.diffusion import DiffRecConfig
from ml_core.models.ease import EASEConfig
from ml_core.models.hyperbolic import HGCFConfig
from ml_core.models.itemknn import ItemKNNConfig
from ml_core.models.kan import KANConfig
from ml_core.models.lightgcn import LightGCNConfig
from ml_core.models.neural_ode import NeuralODEConfig
from ml_core.models.sasrec import SASRecConfig
from ml_core.onnx_export import OnnxScorer, supports
from ml_core.registry import MODELS, capabilities
from tests.ml_core.contract import synthetic_interactions

ML_CORE = Path(__file__).resolve().parents[2] / "ml_core"
PROTOCOLS = (EmbeddingModel, UserStateScorer, OnlineRanker, OnnxExportable)
SASREC = dict(embedding_size=8, max_len=8, n_layers=1, n_heads=1, ff_size=16, dropout=0.0, batch_size=32)
TINY = {
    "popularity": None,
    "itemknn": ItemKNNConfig(k=10),
    "ease": EASEConfig(reg=1.0),
    "sasrec": SASRecConfig(**SASREC),
    "sasrec_bce": SASRecConfig(**SASREC, loss="bce"),
    "lightgcn": LightGCNConfig(embedding_size=8, n_layers=2, batch_size=128),
    "kan": KANConfig(hidden=(4,), ease_reg=1.0, svd_factors=8, n_hard=10, n_uniform=10),
    "neural_ode": NeuralODEConfig(embedding_size=8, hidden_size=8, max_len=8, batch_size=32),
    "hyperbolic": HGCFConfig(embedding_size=8, layers=2, batch_size=128),
    "diffusion": DiffRecConfig(hidden_dims=(32,), steps=5, batch_size=32),
    "ldiffrec": DiffRecConfig(hidden_dims=(32,), steps=5, batch_size=32, latent=True, n_groups=2, latent_size=32,
                              reweight=False),
}
# what each registered model can do (the table the serving code relies on)
EXPECTED = {
    "popularity": set(),
    "itemknn": set(),
    "ease": set(),
    "sasrec": {EmbeddingModel, OnnxExportable},
    "sasrec_bce": {EmbeddingModel},  # trained for comparison; served by torch
    "lightgcn": {EmbeddingModel},  # its serving path is already a dot product: no ONNX export
    "kan": {OnlineRanker, OnnxExportable},
    "neural_ode": {EmbeddingModel, OnnxExportable},
    "hyperbolic": {EmbeddingModel, OnnxExportable},
    "diffusion": {EmbeddingModel, OnnxExportable},
    "ldiffrec": {EmbeddingModel},  # the latent variant has no ONNX export
}


def test_every_registered_model_is_in_the_table():
    assert set(TINY) == set(EXPECTED) == set(MODELS)


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic_interactions(), seed=0)


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, split):
    cls = MODELS[request.param]
    model = cls(TINY[request.param]) if TINY[request.param] is not None else cls()
    model.fit(split.train, FitOptions(seed=3, progress=False, max_epochs=1))
    return model


def test_declared_capabilities_are_the_expected_ones(fitted):
    assert set(type(fitted).capabilities) == set(capabilities(fitted.name)) == EXPECTED[fitted.name]
    assert isinstance(fitted, Recommender)


def test_runtime_checks_agree_with_the_declarations(fitted):
    """What isinstance (the callers' check) answers is what the model declares: no capability by accident."""
    assert {p for p in PROTOCOLS if isinstance(fitted, p)} == EXPECTED[fitted.name]


def test_declared_capabilities_work(fitted, split):
    if isinstance(fitted, EmbeddingModel):
        emb = fitted.item_embeddings()
        assert isinstance(emb, np.ndarray) and emb.ndim == 2 and emb.shape[0] == split.n_items
    if isinstance(fitted, OnlineRanker):
        users = split.eval_users("test")[:4]
        loss = fitted.partial_fit(split.contexts("test", users), split.test_item[users])
        assert np.isfinite(loss) and fitted.net is not None
    if isinstance(fitted, OnnxExportable):
        spec = fitted.onnx_spec()
        assert isinstance(spec, OnnxSpec) and supports(fitted)
        assert len(spec.inputs) == len(spec.input_names) and spec.output_names
        assert set(spec.dynamic_axes) <= set(spec.input_names) | set(spec.output_names)
    else:
        assert not supports(fitted)


def test_the_onnx_scorer_splits_user_state_from_candidates():
    assert issubclass(OnnxScorer, UserStateScorer)


def test_onnx_export_has_no_branch_on_the_model_name():
    source = (ML_CORE / "onnx_export.py").read_text()
    assert "model.name ==" not in source and "self.name ==" not in source and "SUPPORTED" not in source
    assert "onnx_spec()" in source
    # the one lookup by name reads exports written before meta.json recorded their scorer kind
    assert source.count('meta["name"] ==') == 1 and "_LEGACY_SCORERS" in source


def test_every_exportable_model_declares_how_its_graph_is_fed():
    from ml_core.onnx_export import SCORERS

    for name, caps in EXPECTED.items():
        if OnnxExportable not in caps:
            continue
        source = inspect.getsource(type(MODELS[name]()).onnx_spec)
        kinds = [k for k in SCORERS if f'scorer="{k}"' in source]
        assert len(kinds) == 1, (name, kinds)


@pytest.mark.parametrize("module", ["serving/bundle.py", "serving/pipeline.py", "serving/engine.py", "serving_artifacts.py"])
def test_serving_finds_capabilities_by_protocol_not_hasattr(module):
    source = (ML_CORE / module).read_text()
    found = re.findall(r"hasattr\([^)]*\b(user_state|partial_fit|item_embeddings|score_state)\b", source)
    assert not found and "ONLINE_RANKERS" not in source  # no list of model names standing in for a capability
