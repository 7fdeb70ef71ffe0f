"""The Poincare ball of curvature -c: maps, distance and a Riemannian SGD optimiser."""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

MIN_NORM = 1e-15
BALL_EPS = 4e-3  # keep points this far inside the unit ball (float32 stability)


def _artanh(x: Tensor) -> Tensor:
    x = x.clamp(-1 + 1e-7, 1 - 1e-7)
    return 0.5 * (torch.log1p(x) - torch.log1p(-x))


def project(x: Tensor, c: float) -> Tensor:
    """Pull points back inside the ball of radius (1 - eps) / sqrt(c)."""
    norm = x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    max_norm = (1 - BALL_EPS) / c**0.5
    return torch.where(norm > max_norm, x / norm * max_norm, x)


def expmap0(v: Tensor, c: float) -> Tensor:
    """Tangent vector at the origin -> point on the ball."""
    sc = c**0.5
    norm = v.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    return project(torch.tanh(sc * norm) * v / (sc * norm), c)


def logmap0(x: Tensor, c: float) -> Tensor:
    """Point on the ball -> tangent vector at the origin."""
    sc = c**0.5
    norm = x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    tangent: Tensor = _artanh(sc * norm) * x / (sc * norm)
    return tangent


def mobius_add(x: Tensor, y: Tensor, c: float) -> Tensor:
    """x (+)_c y."""
    xy = (x * y).sum(-1, keepdim=True)
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c**2 * x2 * y2).clamp_min(MIN_NORM)


def expmap(x: Tensor, v: Tensor, c: float) -> Tensor:
    """Exponential map at x of tangent vector v."""
    sc = c**0.5
    norm = v.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    lam = 2 / (1 - c * (x * x).sum(-1, keepdim=True)).clamp_min(MIN_NORM)
    second = torch.tanh(sc * lam * norm / 2) * v / (sc * norm)
    return project(mobius_add(x, second, c), c)


def distance(x: Tensor, y: Tensor, c: float) -> Tensor:
    """Geodesic distance d_c(x, y) = 2/sqrt(c) artanh(sqrt(c) ||(-x) (+) y||), broadcasting."""
    sc = c**0.5
    dist: Tensor = 2 / sc * _artanh(sc * mobius_add(-x, y, c).norm(dim=-1))
    return dist


def pairwise_distance(x: Tensor, y: Tensor, c: float) -> Tensor:
    """All distances between x (B, d) and y (N, d): (B, N), without materialising (B, N, d).

    Uses ||(-x) (+) y||^2 = (|x|^2 - 2<x,y> + |y|^2) / (1 - 2c<x,y> + c^2 |x|^2 |y|^2)
    (Ganea et al. 2018), which needs only the Gram matrix.
    """
    xy = x @ y.T
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1)[None]
    num = (x2 - 2 * xy + y2).clamp_min(0)
    den = (1 - 2 * c * xy + c**2 * x2 * y2).clamp_min(MIN_NORM)
    sc = c**0.5
    dist: Tensor = 2 / sc * _artanh(sc * torch.sqrt(num / den + MIN_NORM))
    return dist


class RiemannianSGD(torch.optim.Optimizer):
    """RSGD on the Poincare ball (Bonnabel 2013; Nickel & Kiela 2017): x <- exp_x(-lr * g_R).

    The Riemannian gradient rescales the Euclidean one by the inverse metric,
    g_R = ((1 - c|x|^2)^2 / 4) g_E; `weight_decay` adds wd * x to g_E.
    """

    def __init__(self, params: ParamsT, lr: float, c: float = 1.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "c": c, "weight_decay": weight_decay})

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One RSGD step; like torch's optimisers, first re-evaluates the loss with ``closure`` when one is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            c, lr, wd = group["c"], group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=wd) if wd else p.grad
                factor = ((1 - c * (p * p).sum(-1, keepdim=True)) ** 2) / 4
                p.copy_(expmap(p, -lr * factor * grad, c))
        return loss
