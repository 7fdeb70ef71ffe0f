import dataclasses

import numpy as np
import pytest
import torch

from ml_core.interface import FitOptions, UserContext
from ml_core.models.neural_ode import NeuralODE, NeuralODEConfig, NeuralODENet, rk4_38
from tests.ml_core.contract import RecommenderContract
from tests.ml_core.models.slow_ml100k import assert_clears_popularity, needs_ml100k

TINY = NeuralODEConfig(embedding_size=16, hidden_size=16, max_len=8, learning_rate=0.01, batch_size=32, dropout=0.0)


class TestNeuralODE(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=40)

    def make_model(self):
        return NeuralODE(TINY)

    def test_scores_depend_on_the_request_time(self, fitted, split):
        history, times = split.train_seqs[0], split.train_times[0]
        soon = fitted.score(history, np.arange(split.n_items), times=times, now=float(times[-1]) + 60)
        later = fitted.score(history, np.arange(split.n_items), times=times, now=float(times[-1]) + 90 * 86400)
        assert not np.allclose(soon, later)

    def test_online_state_update_matches_replaying_the_history(self, fitted, split):
        history, times = split.train_seqs[0], split.train_times[0].astype(float)
        state = fitted.net.h0.detach().numpy().copy()
        prev = times[0]
        for item, t in zip(history, times, strict=False):
            state = fitted.step_state(state, int(item), t - prev)
            prev = t
        replay, _ = fitted.request_state([UserContext(history=history, times=times)])
        np.testing.assert_allclose(state, replay[0].numpy(), atol=1e-5)


def test_torchdiffeq_rk4_matches_the_exported_solver():
    net = NeuralODENet(10, NeuralODEConfig(embedding_size=4, hidden_size=8, ode_steps=3))
    torch.nn.init.normal_(net.field[2].weight, std=0.3)
    h, tau = torch.randn(5, 8), torch.rand(5, 1) * 3
    with torch.no_grad():
        lib = net.evolve(h, tau)
        own = rk4_38(lambda s, y: net.vector_field(y, tau), h, 3)
    np.testing.assert_allclose(lib.numpy(), own.numpy(), atol=1e-6)


def test_pure_decay_shrinks_the_state_over_long_gaps():
    net = NeuralODENet(10, NeuralODEConfig(embedding_size=4, hidden_size=8, ode_steps=4))  # fresh: f(h) = 0
    h = torch.randn(2, 8)
    with torch.no_grad():
        short = net.evolve(h, torch.full((2, 1), 0.1)).norm(dim=-1)
        long = net.evolve(h, torch.full((2, 1), 50.0)).norm(dim=-1)
    assert (long < short).all()


@pytest.mark.slow
@needs_ml100k
def test_neural_ode_clears_popularity_on_ml100k():
    assert_clears_popularity(NeuralODE())


class TestNeuralODESampledSoftmax(RecommenderContract):
    """Past `full_softmax_items` the next item competes with sampled negatives only (large catalogues)."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=40)

    def make_model(self):
        return NeuralODE(dataclasses.replace(TINY, full_softmax_items=8, negatives=12))
