"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised user-item graph.

E^(k+1) = D^-1/2 A D^-1/2 E^(k) with A = [[0, R], [R^T, 0]] (torch sparse), no feature
transforms or non-linearities; final embeddings are the mean over layers 0..K; BPR loss
with L2 on the layer-0 embeddings of the batch. Users unseen in training are folded in
as the mean of their history items' final embeddings.

``loss="softmax"`` replaces BPR's one negative by a sampled softmax: each positive against
``negatives`` uniformly drawn items shared by the batch, logits = dot products / temperature
(the contrastive objective of SimpleX, Mao et al. 2021, and SGL's InfoNCE, Wu et al. 2021,
which both report large gains for LightGCN over BPR). Searched beside BPR, not the default.

Every training step propagates the whole graph (O(ratings)), so an epoch makes at most ``max_steps`` (200) steps:
past 200 x 2,048 pairs the batch grows with the data and Adam's step follows the square-root rule
(lr x sqrt(batch / 2,048), Malladi et al. 2022), keeping an epoch linear in the ratings. Below that (ml-100k,
ml-latest-small) the batch is the paper's 2,048.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Interactions
from ..interface import EmbeddingModel, FitOptions, FitReport, UserContext
from ..training import run_epochs
from ..tuning import Categorical, Distribution, Int, LogFloat
from .base import candidate_slots
from .layers import (
    SymmetricSpMM,
    clone_state,
    csr_adjacency,
    graph_batch,
    n_parameters,
    sample_negatives,
    seen_matrix,
)
from .neural_common import TorchRecommender


@dataclass(frozen=True)
class LightGCNConfig:
    """LightGCN hyperparameters."""

    embedding_size: int = 64
    n_layers: int = 3
    learning_rate: float = 1e-2
    reg: float = 1e-4  # L2 weight on layer-0 embeddings of the batch
    batch_size: int = 2048
    max_steps: int = 200  # full propagations per epoch: past max_steps * batch_size pairs the batch grows instead
    epochs: int = 200
    eval_every: int = 5
    loss: str = "bpr"  # "bpr" (the paper) or "softmax" (sampled softmax over shared uniform negatives)
    negatives: int = 1024  # softmax only: shared negatives per batch (capped at the catalogue)
    temperature: float = 0.2  # softmax only

    def __post_init__(self) -> None:
        if self.loss not in ("bpr", "softmax"):
            raise ValueError(f"LightGCN loss must be 'bpr' or 'softmax', not {self.loss!r}")


class LightGCNNet(nn.Module):
    """Layer-0 user and item embeddings plus the fixed normalised adjacency."""

    def __init__(self, n_users: int, n_items: int, c: LightGCNConfig, adjacency: Tensor) -> None:
        super().__init__()
        self.n_users, self.n_layers = n_users, c.n_layers
        self.user_emb = nn.Embedding(n_users, c.embedding_size)
        self.item_emb = nn.Embedding(n_items, c.embedding_size)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.adjacency = adjacency

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Final (mean over layers) user (n_users, d) and item (n_items, d) embeddings."""
        e = torch.cat([self.user_emb.weight, self.item_emb.weight])
        layers = [e]
        for _ in range(self.n_layers):
            e = SymmetricSpMM.apply(self.adjacency, e)
            layers.append(e)
        final = torch.stack(layers).mean(0)
        return final[: self.n_users], final[self.n_users :]


class LightGCN(TorchRecommender):
    """fit / score / export / load; scores are dot products of final user and item embeddings."""

    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel})  # ml_core.interface protocols
    name = "lightgcn"
    net: LightGCNNet
    user_final: np.ndarray  # (n_users, d) final embeddings, cached after each epoch
    item_final: np.ndarray  # (n_items, d)
    config_cls = LightGCNConfig
    # He et al. 2020: d 64, K 1..4 layers (3 best), lr 1e-3, L2 searched over 1e-6..1e-2; batch 2048
    search_space: ClassVar[dict[str, Distribution]] = {"learning_rate": LogFloat(5e-4, 5e-2), "embedding_size": Categorical((32, 64, 128)),
                                    "n_layers": Int(1, 4), "reg": LogFloat(1e-6, 1e-2),
                                    "loss": Categorical(("bpr", "softmax")), "temperature": LogFloat(0.05, 1.0)}

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        c = self.config
        self._remember_data(data)
        torch.manual_seed(options.seed)
        rng = np.random.default_rng(options.seed)
        adjacency = csr_adjacency(data.users, data.items, self.n_users, self.n_items)
        self.net = LightGCNNet(self.n_users, self.n_items, c, adjacency)
        seen = seen_matrix(data.sequences(), self.n_items)
        pairs = np.unique(np.stack([data.users, data.items], 1), axis=0)
        batch = graph_batch(len(pairs), c.batch_size, c.max_steps)  # c.batch_size below ~400k pairs
        opt = torch.optim.Adam(self.net.parameters(), lr=c.learning_rate * (batch / c.batch_size) ** 0.5)

        def train_epoch(epoch: int) -> float:
            self.net.train()
            order = rng.permutation(len(pairs))
            total, steps = 0.0, 0
            for start in range(0, len(order), batch):
                u, i = pairs[order[start : start + batch]].T
                j = (sample_negatives(u, seen, rng) if c.loss == "bpr"
                     else rng.choice(self.n_items, size=min(c.negatives, self.n_items), replace=False))
                u_t, i_t, j_t = (torch.from_numpy(a) for a in (u, i, j))
                users, items = self.net.propagate()
                eu, ei, ej = users[u_t], items[i_t], items[j_t]
                if c.loss == "bpr":
                    bpr = -F.logsigmoid((eu * ei).sum(-1) - (eu * ej).sum(-1)).mean()
                else:
                    bpr = self._softmax_loss(eu, ei, ej, i_t, j_t)
                l2 = (self.net.user_emb(u_t).pow(2).sum() + self.net.item_emb(i_t).pow(2).sum()
                      + self.net.item_emb(j_t).pow(2).sum()) / (2 * len(u))
                loss = bpr + c.reg * l2
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
            self._cache()
            return total / max(steps, 1)

        report = run_epochs(model=self, options=options, epochs=c.epochs, train_epoch=train_epoch,
                            get_state=lambda: clone_state(self.net), set_state=self._set_net_state,
                            eval_every=c.eval_every, desc="lightgcn")
        report.n_parameters = n_parameters(self.net)
        return report

    def _softmax_loss(self, eu: Tensor, ei: Tensor, ej: Tensor, i_t: Tensor, j_t: Tensor) -> Tensor:
        """Cross-entropy of each positive against the batch's shared negatives (a negative equal to the positive
        is masked out)."""
        t = self.config.temperature
        pos = (eu * ei).sum(-1, keepdim=True) / t
        neg = (eu @ ej.T / t).masked_fill(i_t[:, None] == j_t[None, :], float("-inf"))
        logits = torch.cat([pos, neg], 1)
        return F.cross_entropy(logits, torch.zeros(len(eu), dtype=torch.long))

    def _set_net_state(self, state: dict[str, Tensor]) -> None:
        self.net.load_state_dict(state)
        self._cache()

    @torch.no_grad()
    def _cache(self) -> None:
        self.net.eval()
        users, items = self.net.propagate()
        self.user_final, self.item_final = users.numpy().copy(), items.numpy().copy()

    def user_vectors(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """(B, d): the trained user embedding, or the mean history item embedding (NaN when empty)."""
        out = np.full((len(contexts), self.item_final.shape[1]), np.nan, dtype=np.float32)
        for i, ctx in enumerate(contexts):
            u = self._known_user(ctx)
            if u is not None:
                out[i] = self.user_final[u]
                continue
            hist = self._clean_history(ctx.history)
            if len(hist):
                out[i] = self.item_final[hist].mean(0)
        return out

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        scores: np.ndarray = self.user_vectors(contexts) @ self.item_final.T
        return scores

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """The user vector dotted with the candidates' final embeddings only (the serving path)."""
        cand, ok, out = candidate_slots(candidates, self.n_items)
        vec = self.user_vectors([UserContext(history=history, **context)])[0]
        if ok.any() and np.isfinite(vec).all():
            out[ok] = self.item_final[cand[ok]] @ vec
        return out

    def item_embeddings(self) -> np.ndarray:
        return self.item_final

    # -- artifacts: the final embeddings only (export/load come from TorchRecommender; no net to rebuild) -------
    def _tensors(self) -> dict[str, np.ndarray]:
        return {"user_final": self.user_final, "item_final": self.item_final}

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.user_final, self.item_final = tensors["user_final"], tensors["item_final"]
