"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the user's item sequence.

Departures from the paper: pre-LayerNorm transformer blocks (torch's TransformerEncoderLayer,
norm_first) and, by default, full softmax cross-entropy over all items at every position
(Klenitskiy & Vasilev, RecSys 2023) instead of the paper's one-negative BCE, which remains
available as ``loss="bce"``; past 20,000 items (``full_softmax_items``) the softmax runs over the positive and
2,048 uniformly sampled items shared by the batch (sampled softmax), since the full one costs O(n_items) per position. The history window defaults to 20 items (the paper uses 200 on ML-1M; on ml-100k a
short recent window generalised best on validation) and is searched per dataset from 10 to 200 with the other
hyperparameters (``search_space``, ``python -m ml_core train --tune``), and dropout masks come from a uniform draw
(``FastDropout``: the same Bernoulli masks, cheaper on CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Interactions
from ..interface import EmbeddingModel, FitOptions, FitReport, OnnxExportable, OnnxSpec, UserContext
from ..training import run_epochs
from ..tuning import Categorical, Distribution, Float, Int, LogFloat
from .base import candidate_slots
from .layers import (
    FastDropout,
    SeenItems,
    clone_state,
    load_state_numpy,
    n_parameters,
    next_item_loss,
    pad_left,
    sample_negatives,
    seen_matrix,
    state_numpy,
)
from .neural_common import TorchRecommender, length_buckets, tile_bounds


@dataclass(frozen=True)
class SASRecConfig:
    """Self-attentive sequential recommender."""

    embedding_size: int = 64  # width of item and position embeddings
    max_len: int = 20  # history window; searched per dataset (10..200), 20 predicted best on ml-100k by hand
    n_layers: int = 2  # self-attention blocks
    n_heads: int = 2
    ff_size: int = 256  # width of the point-wise feed-forward layer
    activation: str = "gelu"
    dropout: float = 0.5
    learning_rate: float = 2e-3
    reg: float = 0.0  # AdamW weight decay
    batch_size: int = 128
    epochs: int = 200
    loss: str = "ce"  # "ce": softmax over all items; "bce": the paper's one sampled negative per position
    full_softmax_items: int = 20_000  # "ce" past this catalogue size: sampled softmax over `negatives` items
    negatives: int = 2048
    eval_every: int = 2  # epochs between validation checks


class SASRecNet(nn.Module):
    """Item + learnable position embeddings, causal pre-LN transformer blocks, final LayerNorm."""

    def __init__(self, n_items: int, c: SASRecConfig) -> None:
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, c.embedding_size, padding_idx=0)  # index 0 = padding
        self.pos_emb = nn.Embedding(c.max_len, c.embedding_size)
        self.drop = FastDropout(c.dropout)
        layer = nn.TransformerEncoderLayer(c.embedding_size, c.n_heads, dim_feedforward=c.ff_size,
                                           dropout=c.dropout, activation=c.activation, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
        for block in self.blocks.layers:  # residual and feed-forward dropouts; attention-weight dropout stays torch's
            block.dropout, block.dropout1, block.dropout2 = (FastDropout(c.dropout) for _ in range(3))
        self.norm = nn.LayerNorm(c.embedding_size)
        self.scale = math.sqrt(c.embedding_size)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, seqs: Tensor) -> Tensor:
        """(batch, len) padded ids (0 = pad) -> (batch, len, dim) hidden states."""
        length = seqs.shape[1]
        pos = torch.arange(length, device=seqs.device) + (self.pos_emb.num_embeddings - length)
        x = self.item_emb(seqs) * self.scale + self.pos_emb(pos)[None]
        pad = seqs == 0
        x = self.drop(x) * (~pad).unsqueeze(-1)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=seqs.device)
        # padded keys are masked out; every query may still attend to itself, so no row is empty
        mask = causal[None].expand(len(seqs), -1, -1).masked_fill(pad[:, None, :], float("-inf"))
        mask = mask.masked_fill(torch.eye(length, device=seqs.device)[None] > 0, 0.0)  # float eye: ONNX-exportable
        mask = mask.repeat_interleave(self.blocks.layers[0].self_attn.num_heads, dim=0)
        hidden: Tensor = self.norm(self.blocks(x, mask=mask))
        return hidden

    def item_weights(self) -> Tensor:
        """(n_items, dim) output embeddings shared with the input (index 0 = pad dropped)."""
        return self.item_emb.weight[1:]


class SASRec(TorchRecommender):
    """fit / score / export / load around SASRecNet; scores = last hidden state . item embeddings."""

    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel, OnnxExportable})  # ml_core.interface protocols
    name = "sasrec"
    config_cls = SASRecConfig
    net: SASRecNet
    # Kang & McAuley 2018: d 50, 2 blocks, 1 head, dropout 0.2 (dense) to 0.5 (sparse), window 50 to 200 by
    # dataset, lr 1e-3; RecBole's grid: lr 3e-4..3e-3, 2 layers, 2 heads, hidden 64. The window starts at the
    # default 20 (what worked on ml-100k) and may grow to the paper's 200 where histories are long.
    search_space: ClassVar[dict[str, Distribution]] = {
        "learning_rate": LogFloat(1e-4, 1e-2), "embedding_size": Categorical((32, 64, 128)),
        "n_layers": Int(1, 3), "n_heads": Categorical((1, 2, 4)), "dropout": Float(0.1, 0.6),
        "max_len": Int(10, 200, log=True), "reg": Categorical((0.0, 1e-4, 1e-3, 1e-2)),
    }

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:
        c = self.config
        self._remember_data(data)
        torch.manual_seed(options.seed)
        rng = np.random.default_rng(options.seed)
        self.net = SASRecNet(self.n_items, c).to(options.device)
        seqs = [s for s in data.sequences()]
        users = np.array([u for u, s in enumerate(seqs) if len(s) >= 2])
        seen = seen_matrix(seqs, self.n_items) if c.loss == "bce" else None
        opt = torch.optim.AdamW(self.net.parameters(), lr=c.learning_rate, weight_decay=c.reg, betas=(0.9, 0.98))

        def train_epoch(epoch: int) -> float:
            self.net.train()
            tiles = [(u, seqs[u][a:b]) for u in users for a, b in tile_bounds(len(seqs[u]), c.max_len + 1, rng)]  # every target covered
            owners, windows = np.array([u for u, _ in tiles]), [w for _, w in tiles]
            total, steps = 0.0, 0
            for batch in length_buckets([len(w) for w in windows], c.batch_size, rng):
                width = max(len(windows[i]) for i in batch)  # pad to the batch's longest window
                ids = torch.from_numpy(pad_left([windows[i] for i in batch], width)).to(options.device)
                inp, tgt = ids[:, :-1], ids[:, 1:]
                hidden = self.net(inp)
                loss = self._loss(hidden, tgt, owners[batch], seen, rng)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
            return total / max(steps, 1)

        report = run_epochs(model=self, options=options, epochs=c.epochs, train_epoch=train_epoch,
                            get_state=lambda: clone_state(self.net), set_state=self.net.load_state_dict,
                            eval_every=c.eval_every, desc=f"sasrec[{c.loss}]")
        self.net.eval()
        report.n_parameters = n_parameters(self.net)
        return report

    def _loss(self, hidden: Tensor, tgt: Tensor, users: np.ndarray, seen: SeenItems | None,
              rng: np.random.Generator) -> Tensor:
        valid = tgt > 0
        h = hidden[valid]  # (n, dim)
        pos = tgt[valid] - 1  # (n,) item indices
        weights = self.net.item_weights()
        if self.config.loss == "ce":
            return next_item_loss(h, weights, pos, full_items=self.config.full_softmax_items,
                                  negatives=self.config.negatives, rng=rng)
        assert seen is not None  # fit builds it for the bce loss
        rows = np.broadcast_to(users[:, None], tgt.shape)[valid.cpu().numpy()]
        neg = torch.from_numpy(sample_negatives(rows, seen, rng)).to(h.device)
        pos_logit = (h * weights[pos]).sum(-1)
        neg_logit = (h * weights[neg]).sum(-1)
        return F.binary_cross_entropy_with_logits(torch.cat([pos_logit, neg_logit]),
                                                  torch.cat([torch.ones_like(pos_logit), torch.zeros_like(neg_logit)]))

    @torch.no_grad()
    def user_vectors(self, contexts: Sequence[UserContext]) -> tuple[np.ndarray, np.ndarray]:
        """(B, dim) last hidden states and a mask of contexts with no known history."""
        hists = [self._clean_history(ctx.history)[-self.config.max_len :] for ctx in contexts]
        empty = np.array([len(h) == 0 for h in hists], dtype=bool)
        ids = torch.from_numpy(pad_left(hists, max(1, max(len(h) for h in hists))))
        self.net.eval()
        return self.net(ids.to(self.net.item_emb.weight.device))[:, -1].cpu().numpy(), empty

    @torch.no_grad()
    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        out = np.empty((len(contexts), self.n_items), dtype=np.float32)
        items = self.item_embeddings()
        for start in range(0, len(contexts), 256):
            vecs, empty = self.user_vectors(contexts[start : start + 256])
            scores = vecs @ items.T
            scores[empty] = np.nan
            out[start : start + len(vecs)] = scores
        return out

    def item_embeddings(self) -> np.ndarray:
        return self.net.item_weights().detach().cpu().numpy().astype(np.float32)

    def onnx_spec(self) -> OnnxSpec:
        """The last ``max_len`` items (1, max_len), left-padded with 0 -> the user's last hidden state (1, d); the
        scorer dots it with the candidates' item embeddings. Traced with autograd on: the transformer layers' fused
        no-grad kernel has no ONNX form (the values are the same)."""
        length = self.config.max_len
        items = torch.zeros(1, length, dtype=torch.long)
        items[0, -3:] = torch.tensor([1, 2, 3])
        return OnnxSpec(SasrecGraph(self.net), (items,), ["items"], aux={"item_emb": self.item_embeddings()},
                        meta={"max_len": length}, autograd=True, scorer="user_vector")

    def prepare_serving(self, device: str = "cpu") -> None:
        """Move the net to ``device`` and keep the item matrix as numpy for candidate scoring."""
        self.net.to(device).eval()
        self._items = self.item_embeddings()

    @torch.no_grad()
    def user_vector(self, history: Sequence[int]) -> np.ndarray | None:
        """(dim,) last hidden state of one history (the last max_len known items), or None when empty."""
        h = self._clean_history(history)[-self.config.max_len :]
        if not len(h):
            return None
        device = self.net.item_emb.weight.device
        self.net.eval()
        vector: np.ndarray = self.net(torch.from_numpy(h + 1)[None].to(device))[0, -1].cpu().numpy()
        return vector

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """The user's last hidden state dotted with the candidates' item embeddings only (the serving path)."""
        cand, ok, out = candidate_slots(candidates, self.n_items)
        vec = self.user_vector(history) if ok.any() else None
        if vec is not None:
            items = getattr(self, "_items", None)
            items = self.item_embeddings() if items is None else items
            out[ok] = items[cand[ok]] @ vec
        return out

    # -- artifacts: the net's state under its own names (export/load come from TorchRecommender) -------------
    def _tensors(self) -> dict[str, np.ndarray]:
        return state_numpy(self.net)

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.net = SASRecNet(self.n_items, self.config)
        load_state_numpy(self.net, tensors)


@dataclass(frozen=True)
class SASRecBCEConfig(SASRecConfig):
    """SASRec with the paper's loss: BCE on the next item vs one uniformly sampled unseen negative."""

    loss: str = "bce"
    epochs: int = 100
    eval_every: int = 4


class SASRecBCE(SASRec):
    """The paper's training objective, kept for comparison with full cross-entropy."""

    name = "sasrec_bce"
    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel})  # no ONNX export: served by torch
    onnx_spec = None  # type: ignore[assignment]  # None switches the protocol method off (isinstance is False)
    config_cls = SASRecBCEConfig


class SasrecGraph(nn.Module):
    """Left-padded item ids (1, max_len) -> SASRec's last hidden state (1, d) (ONNX)."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net

    def forward(self, items: Tensor) -> Tensor:
        last: Tensor = self.net(items)[:, -1]
        return last
