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


def gyration(u: Tensor, v: Tensor, w: Tensor, c: float) -> Tensor:
    """gyr[u, v] w = (-(u (+) v)) (+) (u (+) (v (+) w)), in closed form (Ungar 2008; geoopt's ``_gyration``)."""
    u2, v2 = (u * u).sum(-1, keepdim=True), (v * v).sum(-1, keepdim=True)
    uv, uw, vw = (u * v).sum(-1, keepdim=True), (u * w).sum(-1, keepdim=True), (v * w).sum(-1, keepdim=True)
    k, k2 = -c, c * c  # the ball of curvature -c
    a = -k2 * uw * v2 - k * vw + 2 * k2 * uv * vw
    b = -k2 * vw * u2 + k * uw
    d = 1 - 2 * k * uv + k2 * u2 * v2
    gyrated: Tensor = w + 2 * (a * u + b * v) / d.clamp_min(MIN_NORM)
    return gyrated


def transport(x: Tensor, y: Tensor, v: Tensor, c: float) -> Tensor:
    """Parallel transport of the tangent vector v at x to y: gyr[y, -x] v * lambda_x / lambda_y."""
    lam_x = 2 / (1 - c * (x * x).sum(-1, keepdim=True)).clamp_min(MIN_NORM)
    lam_y = 2 / (1 - c * (y * y).sum(-1, keepdim=True)).clamp_min(MIN_NORM)
    moved: Tensor = gyration(y, -x, v, c) * lam_x / lam_y
    return moved


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
    g_R = ((1 - c|x|^2)^2 / 4) g_E; `weight_decay` adds wd * x to g_E. With `momentum` (HGCF trains with 0.95),
    the buffer m <- momentum * m + g_R steps instead of g_R and is parallel-transported to the new point after
    each step, as geoopt's RiemannianSGD does.
    """

    def __init__(self, params: ParamsT, lr: float, c: float = 1.0, weight_decay: float = 0.0,
                 momentum: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "c": c, "weight_decay": weight_decay, "momentum": momentum})

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
            c, lr, wd, beta = group["c"], group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=wd) if wd else p.grad
                direction = ((1 - c * (p * p).sum(-1, keepdim=True)) ** 2) / 4 * grad
                if beta:
                    state = self.state[p]
                    buffer = state.get("momentum_buffer")
                    direction = direction if buffer is None else buffer.mul_(beta).add_(direction)
                    moved = expmap(p, -lr * direction, c)
                    state["momentum_buffer"] = transport(p, moved, direction, c)
                    p.copy_(moved)
                else:
                    p.copy_(expmap(p, -lr * direction, c))
        return loss
