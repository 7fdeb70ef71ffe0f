"""ONNX exports of the torch models' scoring paths match torch (fp32 tightly; INT8 within the gate)."""

import numpy as np
import pytest

from ml_core import onnx_export
from ml_core.evaluation import leave_one_out
from ml_core.interface import FitOptions, UserContext
from ml_core.models import neural_ode
from ml_core.models.diffusion import DiffRec, DiffRecConfig
from ml_core.models.ease import EASE
from ml_core.models.hyperbolic import HGCF, HGCFConfig
from ml_core.models.kan import KANConfig, KANRanker
from ml_core.models.neural_ode import NeuralODE, NeuralODEConfig
from ml_core.models.sasrec import SASRec, SASRecConfig
from tests.ml_core.contract import synthetic_interactions

TINY = {
    "diffusion": lambda: DiffRec(DiffRecConfig(hidden_dims=(32,), steps=5, batch_size=32)),
    "hyperbolic": lambda: HGCF(HGCFConfig(embedding_size=8, layers=2, batch_size=128)),
    "kan": lambda: KANRanker(KANConfig(hidden=(4,), ease_reg=1.0, svd_factors=8, n_hard=10, n_uniform=10)),
    "neural_ode": lambda: NeuralODE(NeuralODEConfig(embedding_size=8, hidden_size=8, max_len=8, batch_size=32)),
    "sasrec": lambda: SASRec(SASRecConfig(embedding_size=8, max_len=8, n_layers=1, n_heads=2, ff_size=16,
                                          dropout=0.0, batch_size=32)),
}


@pytest.fixture(scope="module")
def split():
    return leave_one_out(synthetic_interactions(), seed=0)


@pytest.fixture(scope="module", params=sorted(TINY))
def exported(request, split, tmp_path_factory):
    model = TINY[request.param]()
    model.fit(split.train, FitOptions(seed=3, progress=False, max_epochs=3))
    directory = tmp_path_factory.mktemp(request.param)
    meta = onnx_export.export_model(model, directory, int8=True)
    return model, directory, meta


def _requests(split):
    contexts = split.contexts("test", split.eval_users("test"))
    return contexts[:20]


def test_fp32_onnx_scores_match_torch(exported, split):
    model, directory, _ = exported
    contexts = _requests(split)
    torch_scores = model.score_batch(contexts)
    onnx_scores = onnx_export.load_scorer(directory, prefer_int8=False).score_batch(contexts)
    scale = float(np.abs(torch_scores).max())
    np.testing.assert_allclose(onnx_scores, torch_scores, rtol=0, atol=1e-4 * max(scale, 1.0))


def test_an_export_from_before_the_scorer_kind_was_recorded_still_serves(exported, split, tmp_path):
    import json
    import shutil

    _, directory, meta = exported
    assert meta["scorer"] in onnx_export.SCORERS
    old = tmp_path / "old-export"
    shutil.copytree(directory, old)
    (old / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "scorer"}))
    contexts = _requests(split)
    np.testing.assert_array_equal(onnx_export.load_scorer(old).score_batch(contexts),
                                  onnx_export.load_scorer(directory).score_batch(contexts))


def test_int8_is_served_only_when_it_passes_the_gate(exported, split):
    model, directory, meta = exported
    assert "int8_cosine" in meta and "int8_top10_overlap" in meta
    scorer = onnx_export.load_scorer(directory)
    assert scorer.precision == ("int8" if meta["int8"] else "fp32")
    assert (directory / "model.int8.onnx").exists() == meta["int8"]
    if meta["int8"]:
        cos, overlap = onnx_export.agreement(model.score_batch(_requests(split)), scorer.score_batch(_requests(split)))
        assert cos >= 0.99 and overlap >= 0.7


def test_candidate_scores_match_the_full_onnx_row(exported, split):
    _model, directory, _ = exported
    scorer = onnx_export.load_scorer(directory)
    assert scorer.session.get_session_options().intra_op_num_threads == 1  # serving: no thread pool
    history, candidates = split.train_seqs[2], np.array([7, 1, 4, 1])
    times = 1_000_000.0 + 3600.0 * np.arange(len(history))
    full = scorer.score_batch([UserContext(history=history, times=times, now=float(times[-1]))])[0]
    np.testing.assert_allclose(scorer.score(history, candidates, times=times, now=float(times[-1])),
                               full[candidates], rtol=1e-5, atol=1e-6)


def test_onnx_scorer_keeps_the_score_contract(exported, split):
    model, directory, _ = exported
    scorer = onnx_export.load_scorer(directory, prefer_int8=False)
    history = split.train_seqs[0]
    scores = scorer.score(history, np.array([3, -1, 0, split.n_items]), user=0)
    assert scores.dtype == np.float32 and np.isnan(scores[[1, 3]]).all() and np.isfinite(scores[[0, 2]]).all()
    assert np.isnan(scorer.score([], np.arange(4))).all()


def test_unsupported_models_are_refused(split, tmp_path):
    ease = EASE()
    ease.fit(split.train, FitOptions(progress=False))
    assert not onnx_export.supports(ease)
    with pytest.raises(ValueError, match="no ONNX export"):
        onnx_export.export_model(ease, tmp_path)


def test_agreement_of_identical_scores_is_perfect():
    a = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    assert onnx_export.agreement(a, a) == pytest.approx((1.0, 1.0))


def test_ode_export_runs_long_histories_in_chunks(split, tmp_path, monkeypatch):
    monkeypatch.setattr(neural_ode, "ODE_CHUNK", 3)  # the ODE builds its own export (onnx_spec)
    model = TINY["neural_ode"]()
    model.fit(split.train, FitOptions(seed=3, progress=False, max_epochs=1))
    assert onnx_export.export_model(model, tmp_path, int8=False)["chunk"] == 3
    rng = np.random.default_rng(0)
    contexts = [UserContext(history=rng.choice(split.n_items, n, replace=False), times=1e6 + 3600.0 * np.arange(n),
                            now=1e6 + 3600.0 * n + 60.0) for n in (1, 3, 4, 8, 12)]  # 1-3 chunks, then max_len
    torch_scores = model.score_batch(contexts)
    onnx_scores = onnx_export.load_scorer(tmp_path, prefer_int8=False).score_batch(contexts)
    np.testing.assert_allclose(onnx_scores, torch_scores, rtol=0, atol=1e-4 * max(float(np.abs(torch_scores).max()), 1.0))
