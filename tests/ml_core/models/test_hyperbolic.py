import numpy as np
import pytest
import torch

from ml_core.interface import FitOptions
from ml_core.models.hyperbolic import HGCF, HGCFConfig
from ml_core.models.poincare import RiemannianSGD, distance, expmap0, logmap0, pairwise_distance, transport
from tests.ml_core.contract import RecommenderContract
from tests.ml_core.models.slow_ml100k import assert_clears_popularity, needs_ml100k


class TestHGCF(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return HGCF(HGCFConfig(embedding_size=8, layers=2, learning_rate=0.05, batch_size=128, margin=0.2))

    def test_points_stay_inside_the_ball(self, fitted):
        assert float(fitted.item_points.norm(dim=-1).max()) < 1.0
        assert float(fitted.user_points.norm(dim=-1).max()) < 1.0

    def test_unseen_user_is_folded_in_from_history(self, fitted, split):
        history = split.train_seqs[0]
        scores = fitted.score(history, np.arange(split.n_items), user=None)
        assert np.isfinite(scores).all()
        group = set(range((history[0] // 6) * 6, (history[0] // 6) * 6 + 6))
        assert [i for i in np.argsort(-scores) if i not in set(history)][0] in group


def test_log_and_exp_maps_are_inverse():
    v = torch.randn(5, 4) * 0.5
    np.testing.assert_allclose(logmap0(expmap0(v, 1.0), 1.0).numpy(), v.numpy(), atol=1e-5)


def test_pairwise_distance_matches_the_mobius_formula():
    x, y = expmap0(torch.randn(3, 4), 1.0), expmap0(torch.randn(5, 4), 1.0)
    direct = distance(x[:, None], y[None], 1.0)
    np.testing.assert_allclose(pairwise_distance(x, y, 1.0).numpy(), direct.numpy(), rtol=1e-4, atol=1e-5)
    assert float(distance(x, x, 1.0).abs().max()) < 1e-3


def test_rsgd_moves_points_along_geodesics_and_keeps_them_in_the_ball():
    p = torch.nn.Parameter(expmap0(torch.randn(4, 3), 1.0))
    target = expmap0(torch.randn(4, 3), 1.0)
    opt = RiemannianSGD([p], lr=0.3)
    before = float(distance(p, target, 1.0).sum())
    for _ in range(20):
        opt.zero_grad()
        distance(p, target, 1.0).pow(2).sum().backward()
        opt.step()
    assert float(distance(p, target, 1.0).sum()) < before
    assert float(p.norm(dim=-1).max()) < 1.0


def test_parallel_transport_keeps_the_riemannian_norm_and_inverts():
    torch.manual_seed(0)
    c = 1.3
    x, y, v = expmap0(torch.randn(5, 4) * 0.5, c), expmap0(torch.randn(5, 4) * 0.5, c), torch.randn(5, 4)
    moved = transport(x, y, v, c)
    lam = lambda p: 2 / (1 - c * (p * p).sum(-1))  # noqa: E731
    np.testing.assert_allclose((lam(y) * moved.norm(dim=-1)).numpy(), (lam(x) * v.norm(dim=-1)).numpy(), rtol=1e-4)
    np.testing.assert_allclose(transport(y, x, moved, c).numpy(), v.numpy(), atol=1e-5)
    assert float((moved - v).abs().max()) > 1e-3  # it does move the vector


def test_rsgd_with_momentum_converges_faster_than_without_at_the_same_step():
    target = expmap0(torch.randn(4, 3), 1.0)
    start = expmap0(torch.randn(4, 3), 1.0)
    after = {}
    for momentum in (0.0, 0.9):
        p = torch.nn.Parameter(start.clone())
        opt = RiemannianSGD([p], lr=0.02, momentum=momentum)
        for _ in range(15):
            opt.zero_grad()
            distance(p, target, 1.0).pow(2).sum().backward()
            opt.step()
        after[momentum] = float(distance(p, target, 1.0).sum())
        assert float(p.norm(dim=-1).max()) < 1.0
    assert after[0.9] < after[0.0]


@pytest.mark.slow
@needs_ml100k
def test_hgcf_clears_popularity_on_ml100k():
    assert_clears_popularity(HGCF())


class TestHGCFStepBoundedEpochs(RecommenderContract):
    """Past max_steps * batch_size ratings the batch grows so an epoch makes at most max_steps propagations (the
    summed loss's step shrinks by the square-root rule): the model still learns the groups, exports and loads."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return HGCF(HGCFConfig(embedding_size=8, layers=2, learning_rate=0.05, batch_size=64, max_steps=3,
                               margin=0.2))
