import dataclasses

import numpy as np
import pytest
import torch

from ml_core.interface import FitOptions
from ml_core.models.kan import KANConfig, KANRanker, build_net, mlp_twin
from ml_core.models.kan_features import FEATURES
from ml_core.models.kan_layers import KANLinear
from ml_core.models.layers import n_parameters
from tests.ml_core.contract import RecommenderContract
from tests.ml_core.models.slow_ml100k import assert_clears_popularity, needs_ml100k

TINY = KANConfig(hidden=(4,), epochs=6, learning_rate=1e-2, ease_reg=1.0, svd_factors=8, n_hard=10, n_uniform=10)


class TestKANRanker(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False)

    def make_model(self):
        return KANRanker(TINY)

    def test_partial_fit_takes_a_bounded_sgd_step(self, fitted, split):
        clone = KANRanker(fitted.config)
        clone.__dict__.update({k: v for k, v in fitted.__dict__.items() if k != "net"})
        clone.net = build_net(fitted.config)
        clone.net.load_state_dict(fitted.net.state_dict())
        contexts = split.contexts("test", split.eval_users("test")[:8])
        positives = split.test_item[split.eval_users("test")[:8]]
        before = [p.detach().clone() for p in clone.net.parameters()]
        losses = [clone.partial_fit(contexts, positives) for _ in range(5)]
        assert all(np.isfinite(losses))
        moved = sum(float((p - b).abs().sum()) for p, b in zip(clone.net.parameters(), before, strict=False))
        assert 0 < moved
        step = max(float((p - b).norm()) for p, b in zip(clone.net.parameters(), before, strict=False))
        assert step <= 5 * clone.config.online_learning_rate * clone.config.max_grad_norm + 1e-6

    def test_partial_fit_ignores_unknown_positives(self, fitted, split):
        contexts = split.contexts("test", split.eval_users("test")[:2])
        assert np.isnan(fitted.partial_fit(contexts, [-1, split.n_items]))


def test_every_edge_has_a_spline_and_a_silu_base():
    layer = KANLinear(3, 2, grid_size=5, spline_order=3)
    assert layer.spline_weight.shape == (2, 3, 8) and layer.base_weight.shape == (2, 3)
    x = torch.linspace(-1.5, 1.5, 7).unsqueeze(1).repeat(1, 3)
    bases = layer.b_splines(x)
    np.testing.assert_allclose(bases.sum(-1).numpy(), np.ones((7, 3)), atol=1e-5)  # partition of unity


def test_grid_update_keeps_each_edge_function():
    torch.manual_seed(0)
    layer = KANLinear(2, 3, grid_size=6, spline_order=3)
    x = torch.randn(512, 2) * 0.5
    before = layer(x)
    layer.update_grid(x)
    np.testing.assert_allclose(layer(x).detach().numpy(), before.detach().numpy(), atol=2e-2)
    assert float(layer.grid[:, 3].min()) >= float(x.min()) - 0.1  # knots moved to the data


def test_grid_size_and_spline_order_are_configurable():
    net = build_net(KANConfig(hidden=(4,), grid_size=8, spline_order=2))
    assert net.layers[0].spline_weight.shape == (4, len(FEATURES), 10)


def test_mlp_twin_has_the_same_parameter_count_within_two_percent():
    config = KANConfig()
    kan, mlp = build_net(config), build_net(mlp_twin(config))
    assert abs(n_parameters(mlp) - n_parameters(kan)) / n_parameters(kan) < 0.02


def test_unknown_ranker_kind_is_refused():
    with pytest.raises(ValueError, match="ranker"):
        build_net(dataclasses.replace(KANConfig(), ranker="xgboost"))


@pytest.mark.slow
@needs_ml100k
def test_kan_clears_popularity_on_ml100k():
    assert_clears_popularity(KANRanker())


@pytest.mark.parametrize(("grid_size", "order"), [(5, 3), (3, 2), (12, 3), (4, 1)])
def test_local_bases_equal_the_cox_de_boor_recursion(grid_size, order):
    """Inference computes each input's k + 1 nonzero bases only; they must be the full recursion's values,
    on a data-fitted (non-uniform) grid, at the knots themselves and outside the grid."""
    torch.manual_seed(0)
    layer = KANLinear(5, 3, grid_size=grid_size, spline_order=order)
    layer.update_grid(torch.randn(2000, 5) * 1.5)
    x = torch.cat([torch.randn(500, 5) * 3, layer.grid.T, layer.grid.T - 1e-4])
    np.testing.assert_allclose(layer.b_splines_local(x).numpy(), layer.b_splines(x).numpy(), atol=1e-6)
    with torch.no_grad():
        fast = layer(x)
    np.testing.assert_allclose(fast.numpy(), layer(x).detach().numpy(), atol=1e-5)  # grad on: the recursion


def test_cached_knot_terms_give_the_recursions_bases_bit_for_bit_and_follow_the_grid(monkeypatch):
    """A request's few rows use b_splines with the knot differences kept per grid; a moved grid (update_grid, a
    loaded state) must be seen at once, never served with the old knots."""
    torch.manual_seed(0)
    layer = KANLinear(5, 3, grid_size=5, spline_order=3)
    x = torch.randn(100, 5) * 2
    assert torch.equal(layer.b_splines_cached(x), layer.b_splines(x))
    layer.update_grid(torch.randn(2000, 5) * 1.5)  # the grid moves in place
    assert torch.equal(layer.b_splines_cached(x), layer.b_splines(x))
    other = KANLinear(5, 3, grid_size=5, spline_order=3)
    other.update_grid(torch.randn(2000, 5) * 0.5 + 1.0)
    layer.load_state_dict(other.state_dict())
    assert torch.equal(layer.b_splines_cached(x), other.b_splines(x))
    taken: list[str] = []
    for name in ("b_splines_cached", "b_splines_local"):
        method = getattr(layer, name)
        monkeypatch.setattr(layer, name, lambda x, _m=method, _n=name: taken.append(_n) or _m(x))
    with torch.no_grad():  # few rows take the cached path, many the local one: the same layer output
        few, many = layer(x), layer(torch.cat([x] * 3))[:100]
    assert taken == ["b_splines_cached", "b_splines_local"]
    np.testing.assert_allclose(few.numpy(), many.numpy(), atol=1e-5)
