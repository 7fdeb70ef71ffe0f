"""Hyperbolic graph collaborative filtering on the Poincare ball (training recipe after HGCF, Sun et al. WWW 2021).

Follows HGCF (Sun et al., WWW 2021, "HGCF: Hyperbolic Graph Convolution Networks for Collaborative
Filtering"): user and item embeddings are points of a hyperbolic space, mapped to the tangent space
at the origin (log map), aggregated over the normalised user-item graph for `layers` hops with
skip connections (the sum of every hop's output, HGCF's ResSumGCN), and mapped back (exp map).
Training uses HGCF's margin ranking loss on squared hyperbolic distance,
max(0, d(u, i+)^2 - d(u, i-)^2 + margin), with `negatives` sampled negatives per interaction (HGCF: one;
more, averaged, are searched), and Riemannian SGD (own implementation: exp-map updates with the
inverse-metric-scaled gradient, no geoopt dependency).
Scores are negative hyperbolic distances. Users unseen in training are folded in: the tangent
mean of their history items' aggregated embeddings, mapped onto the ball.
Departure: HGCF uses the Lorentz (hyperboloid) model; this implementation uses the Poincare ball
(curvature -c, isometric to it, as the seed specified), so distances and the optimiser are the
ball's closed forms. RSGD momentum (HGCF: 0.95) is searched with the step size (0 by default); the momentum
buffer is parallel-transported along each step, as in geoopt's RiemannianSGD.
The graph is symmetric-normalised (LightGCN-style) rather than HGCF's row-normalised adjacency.
Every step propagates the whole graph, so on large logs an epoch makes at most ``max_steps`` (200) steps: past
200 x 10,000 ratings the batch grows with the data and the step shrinks by the square-root rule (the loss is
summed over the batch); below that (every dataset tuned so far) the batch is HGCF's fixed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..interface import EmbeddingModel, FitOptions, FitReport, OnnxExportable, OnnxSpec, UserContext
from ..tuning import Categorical, Distribution, Int, LogFloat
from .base import candidate_slots, known
from .layers import SeenItems, SymmetricSpMM, csr_adjacency, graph_batch, sample_negatives
from .neural_common import TorchRecommender, seed_everything
from .poincare import RiemannianSGD, expmap0, logmap0, pairwise_distance

CARD = __doc__  # the model card text (rendered by ml_core.cards via the module docstring)


@dataclass(frozen=True)
class HGCFConfig:
    """Hyperbolic model hyperparameters."""

    embedding_size: int = 50
    layers: int = 3  # tangent-space propagation hops
    curvature: float = 1.0  # c of the ball
    margin: float = 0.1  # margin of the ranking loss on squared distance
    init_scale: float = 0.1  # uniform init range of tangent vectors
    learning_rate: float = 0.05  # RSGD step (loss is summed over the batch)
    momentum: float = 0.0  # RSGD momentum, transported along the steps (HGCF: 0.95)
    negatives: int = 1  # sampled negatives per interaction; the margin loss is averaged over them (HGCF: 1)
    reg: float = 0.0  # weight decay inside RSGD
    batch_size: int = 10000
    max_steps: int = 200  # full propagations per epoch: past max_steps * batch_size ratings the batch grows instead
    epochs: int = 200
    min_patience: int = 10  # validation checks without gain before stopping (HGCF's curve is noisy)


class HGCFNet(nn.Module):
    """Ball embeddings + tangent-space aggregation with skip connections."""

    def __init__(self, n_users: int, n_items: int, config: HGCFConfig) -> None:
        super().__init__()
        self.n_users, self.c, self.layers = n_users, config.curvature, config.layers
        init = torch.empty(n_users + n_items, config.embedding_size).uniform_(-config.init_scale, config.init_scale)
        self.points = nn.Parameter(expmap0(init, config.curvature))  # (users + items, d) on the ball

    def forward(self, adj: Tensor) -> Tensor:
        """Aggregated points of every node: (users + items, d) on the ball."""
        x = logmap0(self.points, self.c)
        total = torch.zeros_like(x)
        for _ in range(self.layers):
            x = SymmetricSpMM.apply(adj, x)  # the backward reuses the symmetric adjacency: no transpose per step
            total = total + x
        return expmap0(total, self.c)


class HGCF(TorchRecommender):
    """Hyperbolic recommender: scores are negative Poincare distances between user and item points."""

    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel, OnnxExportable})  # ml_core.interface protocols
    name = "hyperbolic"
    config_cls = HGCFConfig
    _item_tangent: Tensor | None  # items' tangent vectors, cached by prepare_serving
    # Sun et al. 2021 (HGCF): d 50, 2..4 layers, margin 0.1, weight decay 1e-3..5e-3, curvature 1 (learnable
    # in HGCN), momentum SGD (0.95) with a small step; the step is searched widely, with and without momentum;
    # several negatives per interaction (the margin loss averaged over them), as metric-learning recommenders do
    search_space: ClassVar[dict[str, Distribution]] = {
        "embedding_size": Categorical((32, 50, 64)), "layers": Int(1, 4), "curvature": LogFloat(0.1, 10.0),
        "margin": LogFloat(0.01, 1.0), "learning_rate": LogFloat(0.001, 0.5),
        "reg": Categorical((0.0, 1e-4, 1e-3, 5e-3)), "momentum": Categorical((0.0, 0.9, 0.95)),
        "negatives": Categorical((1, 4, 8)),
    }
    # HGCF's validation curve is noisy and slow to rise at small steps: trials run 6 epochs before the median
    # pruner may stop them (at 2, most slow-but-good configurations were pruned on ml-100k)
    prune_warmup_epochs: ClassVar[int] = 6

    def __init__(self, config: HGCFConfig | None = None) -> None:
        super().__init__(config)
        self.user_points = torch.zeros(0, self.config.embedding_size)
        self.item_points = torch.zeros(0, self.config.embedding_size)

    def fit(self, data: Any, options: FitOptions) -> FitReport:
        """Margin-ranking training with RSGD; final points are cached for scoring."""
        cfg = self.config
        gen = seed_everything(options.seed)
        self._remember_data(data)
        # float32 degrees: the values this model was tuned with (LightGCN's are float64)
        adj = csr_adjacency(data.users, data.items, data.n_users, data.n_items, degree_dtype=np.float32)
        self.net = net = HGCFNet(data.n_users, data.n_items, cfg)
        batch = graph_batch(len(data.users), cfg.batch_size, cfg.max_steps)  # cfg.batch_size below 2M ratings
        # the loss is summed over the batch: the square-root rule on the mean's step is sqrt(batch_size / batch) here
        opt = RiemannianSGD(net.parameters(), lr=cfg.learning_rate * (cfg.batch_size / batch) ** 0.5,
                            c=cfg.curvature, weight_decay=cfg.reg, momentum=cfg.momentum)
        seen = SeenItems(data.users, data.items, data.n_users, data.n_items)
        users, items = torch.from_numpy(data.users), torch.from_numpy(data.items)

        def train_epoch(epoch: int) -> float:
            perm, total, steps = torch.randperm(len(users), generator=gen), 0.0, 0
            negatives = torch.stack([torch.from_numpy(sample_negatives(data.users, seen, gen).astype(np.int64))
                                     for _ in range(cfg.negatives)], dim=1)  # (interactions, k)
            for start in range(0, len(perm), batch):
                idx = perm[start : start + batch]
                points = net(adj)
                u = points[users[idx]]
                pos = points[data.n_users + items[idx]]
                neg = points[data.n_users + negatives[idx]]  # (batch, k, d)
                d_pos = sq_distance(u, pos, cfg.curvature)
                d_neg = sq_distance(u[:, None], neg, cfg.curvature)
                # HGCF sums over the batch; the k negatives of an interaction are averaged
                loss = torch.relu(d_pos[:, None] - d_neg + cfg.margin).mean(1).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            self._cache(adj)
            return total / max(steps, 1)

        report = self._train_epochs(options, cfg.epochs, train_epoch)
        self._cache(adj)
        return report

    @torch.no_grad()
    def _cache(self, adj: Tensor) -> None:
        assert self.net is not None
        points = self.net(adj)
        self.user_points, self.item_points = points[: self.net.n_users], points[self.net.n_users :]
        self._item_tangent = None

    def _score_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:
        return -pairwise_distance(self._user_point(contexts), self.item_points, self.config.curvature).numpy()

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """Negative distances from the user's point to the candidates' points only (the serving path)."""
        cand, ok, out = candidate_slots(candidates, self.n_items)
        if ok.any() and len(known(history, self.n_items)):
            with torch.no_grad():
                user = self._user_point([UserContext(history=history, **context)])
                items = self.item_points[torch.from_numpy(cand[ok])]
                out[ok] = -pairwise_distance(user, items, self.config.curvature)[0].numpy()
        return out

    def prepare_serving(self, device: str = "cpu") -> None:
        """Cache the items' tangent vectors (a user without a trained point is their history's tangent mean)."""
        self._item_tangent = logmap0(self.item_points, self.config.curvature)

    def _user_point(self, contexts: Sequence[UserContext]) -> Tensor:
        """Trained point for known users; tangent mean of history items for the rest."""
        c, rows = self.config.curvature, []
        item_tangent = getattr(self, "_item_tangent", None)
        item_tangent = logmap0(self.item_points, c) if item_tangent is None else item_tangent
        for ctx in contexts:
            u = ctx.user
            if u is not None and 0 <= int(u) < len(self.user_points):
                rows.append(self.user_points[int(u)])
            else:
                rows.append(expmap0(item_tangent[torch.from_numpy(known(ctx.history, self.n_items))].mean(0), c))
        return torch.stack(rows)

    def user_points_for(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """(B, d) user points on the ball (input of the exported ONNX scoring graph)."""
        return self._user_point(contexts).numpy()

    def item_embeddings(self) -> np.ndarray:
        """Tangent vectors at the origin of the item points (an approximate Euclidean view for retrieval)."""
        return logmap0(self.item_points, self.config.curvature).numpy()

    def scoring_module(self) -> nn.Module:
        """user points (B, d) -> negative distances to every item (B, n_items); exported to ONNX."""
        return BallScorer(self.item_points, self.config.curvature)

    def onnx_spec(self) -> OnnxSpec:
        """User points on the ball (B, d) -> negative distances (B, n_items)."""
        aux = {"user_points": self.user_points.numpy(), "item_points": self.item_points.numpy()}
        return OnnxSpec(self.scoring_module(), (self.user_points[:2].clone(),), ["user_points"],
                        dynamic_axes={"user_points": {0: "batch"}, "scores": {0: "batch"}}, aux=aux,
                        meta={"curvature": self.config.curvature}, scorer="user_points")

    def _tensors(self) -> dict[str, np.ndarray]:
        return {"user_points": self.user_points.numpy(), "item_points": self.item_points.numpy()}

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.user_points = torch.from_numpy(np.array(tensors["user_points"]))
        self.item_points = torch.from_numpy(np.array(tensors["item_points"]))
        self.net = self.scoring_module()  # scoring needs only the cached points


class BallScorer(nn.Module):
    """Negative Poincare distance from user points to fixed item points."""

    items: Tensor  # (N, d) buffer

    def __init__(self, item_points: Tensor, c: float) -> None:
        super().__init__()
        self.register_buffer("items", item_points.clone())
        self.c = c

    def forward(self, user_points: Tensor) -> Tensor:
        return -pairwise_distance(user_points, self.items, self.c)


def sq_distance(x: Tensor, y: Tensor, c: float) -> Tensor:
    from .poincare import distance

    return distance(x, y, c) ** 2
