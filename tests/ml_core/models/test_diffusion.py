import numpy as np
import pytest
import torch

from ml_core.interface import FitOptions, UserContext
from ml_core.models.diffusion import DiffRec, DiffRecConfig, LDiffRec, LDiffRecConfig
from ml_core.models.diffusion_process import GaussianDiffusion, linear_variance_betas
from tests.ml_core.contract import RecommenderContract
from tests.ml_core.models.slow_ml100k import assert_clears_popularity, needs_ml100k

TINY = DiffRecConfig(hidden_dims=(32,), steps=5, batch_size=32, learning_rate=5e-3, dropout=0.1)


class TestDiffRec(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=40)

    def make_model(self):
        return DiffRec(TINY)

    def test_history_items_rank_below_every_unseen_item(self, fitted, split):
        history = split.train_seqs[0]
        scores = fitted.score(history, np.arange(split.n_items))
        unseen = np.setdiff1d(np.arange(split.n_items), history)
        assert scores[history].max() < scores[unseen].min()


class TestLatentDiffRec(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return DiffRec(DiffRecConfig(hidden_dims=(32,), steps=5, batch_size=32, learning_rate=1e-2, dropout=0.0,
                                     latent=True, n_groups=2, latent_size=32, anneal_steps=50, reweight=False))


def test_noise_schedule_is_small_and_increasing():
    betas = linear_variance_betas(10, 0.01, 0.001, 0.005)
    alpha_bar = np.cumprod(1 - betas)
    assert betas[0] == pytest.approx(1e-5)
    assert np.all(np.diff(alpha_bar) < 0) and alpha_bar[-1] > 0.99


def test_inference_adds_no_noise():
    process = GaussianDiffusion(5, 0.01, 0.001, 0.005)
    model = lambda x, t: x * 0.5  # noqa: E731 - any deterministic denoiser
    x = torch.rand(3, 7)
    torch.manual_seed(0)
    first = process.reverse(model, x)
    torch.manual_seed(1)
    np.testing.assert_array_equal(process.reverse(model, x).numpy(), first.numpy())


def test_reweighted_loss_uses_snr_differences():
    process = GaussianDiffusion(4, 0.01, 0.001, 0.005)
    ac = np.cumprod(1 - linear_variance_betas(4, 0.01, 0.001, 0.005))
    snr = ac / (1 - ac)
    np.testing.assert_allclose(process.step_weight[1:].numpy(), snr[:-1] - snr[1:], rtol=1e-5)
    assert float(process.step_weight[0]) == 1.0


def test_users_without_history_score_nan():
    model = DiffRec(TINY)
    model.n_items = 4
    assert np.isnan(model.score_batch([UserContext(history=[])])).all()


@pytest.mark.slow
@needs_ml100k
def test_diffrec_clears_popularity_on_ml100k():
    assert_clears_popularity(DiffRec(DiffRecConfig(epochs=40)))


@pytest.mark.slow
@needs_ml100k
def test_latent_diffrec_clears_popularity_on_ml100k():
    assert_clears_popularity(LDiffRec(LDiffRecConfig(n_groups=1)))  # the configuration validation selects
