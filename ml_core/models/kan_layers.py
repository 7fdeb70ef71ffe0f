"""Kolmogorov-Arnold layers (Liu et al. 2024): a learnable B-spline on every edge plus a SiLU base path.

phi(x) = w_b * silu(x) + w_s * sum_i c_i B_i(x) for every (input, output) edge, B_i the order-k
B-splines on a grid of G intervals (extended by k knots each side). The grid adapts to the data
(`update_grid`): knots move to a blend of input quantiles and a uniform grid, and the spline
coefficients are refitted by least squares so each edge's function is preserved (the paper's
grid extension/update).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# the recursion's grid-only terms: interval starts and ends, then per level (left knots, spans, right knots, spans)
_KnotTerms = tuple[Tensor, Tensor, list[tuple[Tensor, Tensor, Tensor, Tensor]]]


class KANLinear(nn.Module):
    """One KAN layer: in_features x out_features learnable edge functions, summed per output."""

    grid: Tensor  # buffer (in, G + 2k + 1): the knots of every input's splines
    few_rows = 256  # inference on at most this many rows uses b_splines_cached, on more b_splines_local

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: tuple[float, float] = (-2.0, 2.0), grid_eps: float = 0.02,
                 noise_scale: float = 0.1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order, self.grid_eps = grid_size, spline_order, grid_eps
        h = (grid_range[1] - grid_range[0]) / grid_size
        knots = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float32) * h + grid_range[0]
        self.register_buffer("grid", knots.expand(in_features, -1).contiguous())  # (in, G + 2k + 1)
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, grid_size + spline_order))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.base_weight, a=5**0.5)
        nn.init.kaiming_uniform_(self.spline_scaler, a=5**0.5)
        with torch.no_grad():
            noise = (torch.rand(grid_size + 1, in_features, out_features) - 0.5) * noise_scale / grid_size
            self.spline_weight.copy_(self.curve_to_coeff(self.grid.T[spline_order:-spline_order], noise))

    def b_splines(self, x: Tensor) -> Tensor:
        """B-spline bases by the Cox-de Boor recursion: (N, in) -> (N, in, G + k). Training, export and grid
        updates take the knot terms fresh from the grid; inference on few rows reuses them (`b_splines_cached`)."""
        return _cox_de_boor(x, *_knot_terms(self.grid, self.spline_order))

    def b_splines_cached(self, x: Tensor) -> Tensor:
        """:meth:`b_splines` with its knot terms computed once per grid: the same operations on the same values
        (bit for bit), fewer of them. For inference on few rows, where each operation's fixed cost is most of
        the time (a request's ~100 candidates); :meth:`b_splines_local` wins on many rows. The terms are kept
        until the grid's values change (``update_grid``, a loaded state), which one comparison per call detects."""
        cached: tuple[Tensor, _KnotTerms] | None = self.__dict__.get("_knot_cache")
        if cached is None or not torch.equal(cached[0], self.grid):
            cached = (self.grid.clone(), _knot_terms(self.grid, self.spline_order))
            self.__dict__["_knot_cache"] = cached
        return _cox_de_boor(x, *cached[1])

    def b_splines_local(self, x: Tensor) -> Tensor:
        """The same bases as :meth:`b_splines`, computed on each input's k + 1 nonzero ones only (de Boor's local
        triangle, Piegl & Tiller's BasisFuns) and scattered into place: O(k^2) work per input instead of
        O(k (G + 2k)). Inference only (no autograd through the span search)."""
        k, n_knots = self.spline_order, self.grid.shape[1]
        step_lo, step_hi = self.grid[:, 1:2] - self.grid[:, :1], self.grid[:, -1:] - self.grid[:, -2:-1]
        pad = torch.arange(1, k + 1, dtype=x.dtype)
        # k extra knots each side: only bases outside the kept G + k read them, and those are dropped below
        knots = torch.cat([self.grid[:, :1] - step_lo * pad.flip(0), self.grid, self.grid[:, -1:] + step_hi * pad], 1)
        inside = (x >= self.grid[:, 0]) & (x < self.grid[:, -1])
        span = torch.searchsorted(self.grid, x.T.contiguous(), right=True).T - 1  # U[i] <= x < U[i+1]
        span = span.clamp(0, n_knots - 2) + k  # index into the padded knots
        rows = knots.expand(x.shape[0], -1, -1)  # (N, in, n_knots + 2k), a view
        left, right = [x], [x]  # index 0 unused
        for j in range(1, k + 1):
            left.append(x - rows.gather(2, (span + 1 - j).unsqueeze(-1)).squeeze(-1))
            right.append(rows.gather(2, (span + j).unsqueeze(-1)).squeeze(-1) - x)
        basis = [torch.ones_like(x)]
        for j in range(1, k + 1):
            saved = torch.zeros_like(x)
            nxt = []
            for r in range(j):
                temp = basis[r] / (right[r + 1] + left[j - r])
                nxt.append(saved + right[r + 1] * temp)
                saved = left[j - r] * temp
            basis = [*nxt, saved]
        local = torch.stack(basis, -1) * inside.unsqueeze(-1).to(x.dtype)  # (N, in, k + 1): B_{i-k} .. B_i
        index = (span - 2 * k).unsqueeze(-1) + torch.arange(k + 1)  # their positions among the G + k bases
        valid = (index >= 0) & (index < self.grid_size + k)
        out = torch.zeros(*x.shape, self.grid_size + k + 1, dtype=x.dtype)  # last column: a sink for dropped ones
        out.scatter_(2, torch.where(valid, index, self.grid_size + k), local * valid)
        return out[..., :-1]

    def curve_to_coeff(self, x: Tensor, y: Tensor) -> Tensor:
        """Least-squares spline coefficients: x (N, in), y (N, in, out) -> (out, in, G + k)."""
        a = self.b_splines(x).transpose(0, 1)  # (in, N, G + k)
        sol = torch.linalg.lstsq(a, y.transpose(0, 1)).solution  # (in, G + k, out)
        coeff: Tensor = sol.permute(2, 0, 1).contiguous()
        return coeff

    @property
    def scaled_spline_weight(self) -> Tensor:
        return self.spline_weight * self.spline_scaler.unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:  # (N, in) -> (N, out)
        base = F.linear(F.silu(x), self.base_weight)
        fast = not torch.is_grad_enabled() and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
        if not fast:
            bases = self.b_splines(x)
        else:
            bases = self.b_splines_cached(x) if x.shape[0] <= self.few_rows else self.b_splines_local(x)
        spline = F.linear(bases.reshape(x.shape[0], -1),
                          self.scaled_spline_weight.reshape(self.out_features, -1))
        return base + spline

    @torch.no_grad()
    def update_grid(self, x: Tensor, margin: float = 0.01) -> None:
        """Move knots to the data (quantile/uniform blend) and refit coefficients to keep each edge's curve."""
        n = x.shape[0]
        splines = self.b_splines(x).permute(1, 0, 2)  # (in, N, G + k)
        weight = self.scaled_spline_weight.permute(1, 2, 0)  # (in, G + k, out)
        y = torch.bmm(splines, weight).permute(1, 0, 2)  # (N, in, out): current spline outputs
        x_sorted = torch.sort(x, dim=0).values
        idx = torch.linspace(0, n - 1, self.grid_size + 1).long()
        adaptive = x_sorted[idx]
        step = (x_sorted[-1] - x_sorted[0] + 2 * margin) / self.grid_size
        uniform = torch.arange(self.grid_size + 1, dtype=torch.float32).unsqueeze(1) * step + x_sorted[0] - margin
        grid = self.grid_eps * uniform + (1 - self.grid_eps) * adaptive
        k = self.spline_order
        ext = torch.arange(1, k + 1, dtype=torch.float32).unsqueeze(1) * step
        grid = torch.cat([grid[:1] - ext.flip(0), grid, grid[-1:] + ext], dim=0)
        self.grid.copy_(grid.T)
        self.spline_weight.copy_(self.curve_to_coeff(x, y))  # the scaler is folded into the refitted coefficients
        self.spline_scaler.fill_(1.0)

    def regularization_loss(self, activation: float = 1.0, entropy: float = 1.0) -> Tensor:
        """The paper's sparsity regulariser: L1 of mean |coefficients| plus entropy over edges."""
        l1 = self.spline_weight.abs().mean(-1)
        total = l1.sum()
        p = l1 / total.clamp_min(1e-12)
        return activation * total + entropy * -(p * (p + 1e-12).log()).sum()


def standardize(features: Tensor, mean: Tensor, std: Tensor, bound: float = 8.0) -> Tensor:
    """(x - mean) / std, clipped to +-bound so serving-time outliers cannot blow up a ranker."""
    return ((features - mean) / std).clamp(-bound, bound)


class KANNet(nn.Module):
    """Stack of KAN layers over standardised features: (N, F) -> (N,) scores."""

    chunk = 4096  # rows per block at inference
    mean: Tensor  # buffers (F,): feature standardisation
    std: Tensor

    def __init__(self, widths: list[int], grid_size: int, spline_order: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(widths[0]))
        self.register_buffer("std", torch.ones(widths[0]))
        self.layers = nn.ModuleList(KANLinear(a, b, grid_size, spline_order) for a, b in zip(widths[:-1], widths[1:], strict=False))

    def forward(self, features: Tensor) -> Tensor:
        if not torch.is_grad_enabled() and features.shape[0] > self.chunk and not torch.jit.is_tracing():
            # cache-sized blocks: the spline bases are ~(G + 2k) temporaries per input, memory-bound in bulk
            return torch.cat([self.forward(block) for block in features.split(self.chunk)])
        x = standardize(features, self.mean, self.std)
        for layer in self.layers:
            x = layer(x)
        return x.squeeze(-1)

    @torch.no_grad()
    def update_grid(self, features: Tensor) -> None:
        """Grid update from data, layer by layer (each layer sees the previous layer's outputs)."""
        x = standardize(features, self.mean, self.std)
        for layer in self._kan_layers():
            layer.update_grid(x)
            x = layer(x)

    def regularization_loss(self) -> Tensor:
        first, *rest = [layer.regularization_loss() for layer in self._kan_layers()]
        return sum(rest, first)

    def _kan_layers(self) -> list[KANLinear]:
        """The layers as KANLinear (nn.ModuleList yields plain Modules to the type checker)."""
        return [layer for layer in self.layers if isinstance(layer, KANLinear)]


class MLPNet(nn.Module):
    """The comparison ranker: a SiLU MLP on the same standardised features."""

    mean: Tensor  # buffers (F,): feature standardisation
    std: Tensor

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(widths[0]))
        self.register_buffer("std", torch.ones(widths[0]))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
            layers += [nn.Linear(a, b)] + ([nn.SiLU()] if i < len(widths) - 2 else [])
        self.body = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        scores: Tensor = self.body(standardize(features, self.mean, self.std)).squeeze(-1)
        return scores

    def update_grid(self, features: Tensor) -> None:
        """MLPs have no grid; kept so both rankers train through the same loop."""

    def regularization_loss(self) -> Tensor:
        return torch.zeros(())


def _knot_terms(grid: Tensor, order: int) -> _KnotTerms:
    """What the Cox-de Boor recursion takes from the grid alone: the interval starts and ends, and per level the
    left knots and spans and the right knots and spans."""
    levels = [(grid[:, : -(k + 1)].contiguous(), grid[:, k:-1] - grid[:, : -(k + 1)],
               grid[:, k + 1 :].contiguous(), grid[:, k + 1 :] - grid[:, 1:-k]) for k in range(1, order + 1)]
    return grid[:, :-1].contiguous(), grid[:, 1:].contiguous(), levels


def _cox_de_boor(x: Tensor, lo: Tensor, hi: Tensor, levels: list[tuple[Tensor, Tensor, Tensor, Tensor]]) -> Tensor:
    """The order-k bases of x (N, in) from the knot terms: (N, in, G + k)."""
    x = x.unsqueeze(-1)
    bases = ((x >= lo) & (x < hi)).to(x.dtype)
    for left_knots, left_spans, right_knots, right_spans in levels:
        bases = (x - left_knots) / left_spans * bases[..., :-1] + (right_knots - x) / right_spans * bases[..., 1:]
    return bases
