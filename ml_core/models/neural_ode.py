"""Neural-ODE temporal model ("Quantum-Fluid"; Chen et al. 2018): a complex user state flowing in real time.

Follows Neural Ordinary Differential Equations (Chen et al., NeurIPS 2018) in the ODE-RNN form
(Rubanova et al. 2019): a user's interest is a complex vector h in C^d that evolves continuously
between events over the real, irregular gaps in the timestamps, dh/dt = (-softplus(a) + i w) * h + f(h)
(a learned per-dimension decay and rotation, plus a learned vector field f, a tanh MLP on [Re h, Im h]),
integrated with torchdiffeq's fixed-grid RK4 over the gap (time warped as log(1 + hours) so that
seconds-apart ratings and months-long pauses both stay well conditioned); at each event a GRU
cell writes the item's complex embedding into the state (the jump). Items have complex embeddings
e_j; the score of item j is Re<h(now), e_j> = Re h . Re e_j + Im h . Im e_j, with h evolved from the
last event to the request time `now`. Training: teacher forcing with full softmax cross-entropy on the next
item over every training event, each user's timeline cut into windows of `max_len` + 1 events at a random phase
each epoch (as for SASRec in this project); each window starts from the learned initial state. Past 20,000
items (`full_softmax_items`) the softmax runs over the positive and 2,048 sampled items, as SASRec's does.
Relation to LT-OCF (Choi et al., CIKM 2021): LT-OCF makes LightGCN's layer index continuous and
integrates embedding propagation over the user-item graph with an ODE (learnable "layer times");
its time axis is depth, not the clock, and it ignores timestamps. Here the ODE runs along the real
time axis of each user's history, so the same history scores differently at different `now`.
Departures: no adjoint method (backprop through the solver; the gaps are short), no graph
propagation, and the state update is a GRU jump rather than a continuous input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..interface import EmbeddingModel, FitOptions, FitReport, OnnxExportable, OnnxSpec, UserContext
from ..tuning import Categorical, Distribution, Float, Int, LogFloat
from .base import candidate_slots, known
from .layers import next_item_loss
from .neural_common import TorchRecommender, length_buckets, load_net_state, seed_everything, tile_bounds

CARD = __doc__  # the model card text (rendered by ml_core.cards via the module docstring)
ODE_CHUNK = 10  # events per run of the exported ONNX graph (onnx_spec)


@dataclass(frozen=True)
class NeuralODEConfig:
    """Neural-ODE temporal model hyperparameters."""

    embedding_size: int = 64  # complex dimensions d (real width 2d)
    hidden_size: int = 64  # width of the vector-field MLP
    max_len: int = 50  # events fed to the state per user
    ode_steps: int = 1  # fixed RK4 steps per gap
    time_unit_s: float = 3600.0  # gaps are warped as log(1 + gap / time_unit)
    dropout: float = 0.2
    learning_rate: float = 5e-3
    reg: float = 0.0
    batch_size: int = 128
    full_softmax_items: int = 20_000  # past this catalogue size: sampled softmax over `negatives` items
    negatives: int = 2048
    epochs: int = 20  # early-stopped on validation; every event is a target each epoch (~25 s on ml-100k, 1 thread)


def rk4_38(func: Any, y: Tensor, steps: int) -> Tensor:
    """RK4 (3/8 rule, torchdiffeq's 'rk4') from s = 0 to 1: used by the ONNX path, no torchdiffeq."""
    dt = 1.0 / steps
    for i in range(steps):
        t0 = i * dt
        k1 = func(t0, y)
        k2 = func(t0 + dt / 3, y + dt * k1 / 3)
        k3 = func(t0 + 2 * dt / 3, y + dt * (k2 - k1 / 3))
        k4 = func(t0 + dt, y + dt * (k1 - k2 + k3))
        y = y + (k1 + 3 * (k2 + k3) + k4) * dt * 0.125
    return y


class NeuralODENet(nn.Module):
    """Complex item embeddings, a rotation/decay + MLP vector field, and a GRU event jump."""

    def __init__(self, n_items: int, config: NeuralODEConfig) -> None:
        super().__init__()
        d = config.embedding_size
        self.d, self.steps = d, config.ode_steps
        self.item = nn.Embedding(n_items + 1, 2 * d, padding_idx=n_items)  # [Re | Im]
        nn.init.normal_(self.item.weight, std=0.05)
        self.decay = nn.Parameter(torch.full((d,), -3.0))  # softplus -> rate
        self.omega = nn.Parameter(torch.randn(d) * 0.1)  # rotation frequency
        self.field = nn.Sequential(nn.Linear(2 * d, config.hidden_size), nn.Tanh(),
                                   nn.Linear(config.hidden_size, 2 * d))
        out_layer = self.field[2]
        assert isinstance(out_layer, nn.Linear)
        nn.init.zeros_(out_layer.weight)  # start as pure decay/rotation; the field is learned
        nn.init.zeros_(out_layer.bias)
        self.jump = nn.GRUCell(2 * d, 2 * d)
        self.h0 = nn.Parameter(torch.zeros(2 * d))
        self.drop = nn.Dropout(config.dropout)
        self.use_torchdiffeq = True

    def vector_field(self, h: Tensor, tau: Tensor, rotation: Tensor | None = None) -> Tensor:
        """tau * [(-softplus(a) + i w) h + f(h)] for h = [Re | Im] (B, 2d); tau (B, 1) warped gap.

        ``rotation``: the linear part as one (2d, 2d) matrix (``rotation()``), the same map in one product;
        the ONNX export passes it (a few graph nodes per step instead of slices, products and a concat).
        """
        velocity: Tensor
        if rotation is not None:
            velocity = tau * (h @ rotation + self.field(h))
            return velocity
        re, im = h[:, : self.d], h[:, self.d :]
        a, w = -F.softplus(self.decay), self.omega
        linear = torch.cat([a * re - w * im, a * im + w * re], dim=-1)
        velocity = tau * (linear + self.field(h))
        return velocity

    def rotation(self) -> Tensor:
        """R with [Re h | Im h] @ R = [a Re h - w Im h | a Im h + w Re h] (a = -softplus(decay), w = omega)."""
        eye = torch.eye(self.d, device=self.decay.device)
        a, w = eye * -F.softplus(self.decay), eye * self.omega  # diagonal matrices (ONNX has no aten::diag)
        return torch.cat([torch.cat([a, w], dim=1), torch.cat([-w, a], dim=1)], dim=0)

    def evolve(self, h: Tensor, tau: Tensor, rotation: Tensor | None = None) -> Tensor:
        """Integrate the state over the warped gaps tau (B, 1) with fixed-step RK4."""
        func = lambda s, y: self.vector_field(y, tau, rotation)  # noqa: E731
        if self.use_torchdiffeq and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            from torchdiffeq import odeint

            t = torch.tensor([0.0, 1.0], device=h.device)
            evolved: Tensor = odeint(func, h, t, method="rk4", options={"step_size": 1.0 / self.steps})[-1]
            return evolved
        return rk4_38(func, h, self.steps)

    def states(self, items: Tensor, taus: Tensor, h: Tensor | None = None, rotation: Tensor | None = None
               ) -> Tensor:
        """Run left-padded sequences: items (B, L) (pad = n_items), taus (B, L) warped gap *before* each event.

        Returns the state right after each event, (B, L, 2d); padded steps keep the start state (h0 unless
        ``h`` (B, 2d) is given: the ONNX export runs a long history as consecutive chunks).
        """
        b, length = items.shape
        h = self.h0.expand(b, -1) if h is None else h
        pad = self.item.padding_idx
        assert pad is not None  # set in __init__
        out = []
        for step in range(length):
            real = (items[:, step] != pad).unsqueeze(-1)
            moved = self.evolve(h, taus[:, step : step + 1], rotation)
            updated = self.jump(self.drop(self.item(items[:, step])), moved)
            h = torch.where(real, updated, h)
            out.append(h)
        return torch.stack(out, dim=1)

    def scores(self, h: Tensor) -> Tensor:
        """Re<h, e_j> for every item: (B, 2d) -> (B, n_items)."""
        return h @ self.item.weight[:-1].T


class NeuralODE(TorchRecommender):
    """Continuous-time sequential recommender; scores come from the state evolved to `now`."""

    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel, OnnxExportable})  # ml_core.interface protocols
    name = "neural_ode"
    config_cls = NeuralODEConfig
    net: NeuralODENet | None
    metadata_fallbacks: ClassVar[dict[str, str]] = {
        "timestamps": "no timestamps: events are one position (1 s) apart, so the state barely flows between "
                      "events and moves by its GRU jumps (an ordered GRU, no real-time decay)",
    }
    # Chen et al. 2018 / Rubanova et al. 2019 (ODE-RNN): latent width 20..100, fixed-grid RK4 with a few steps;
    # the time unit sets the ODE's horizon (how many units a gap spans), from minutes to a week
    search_space: ClassVar[dict[str, Distribution]] = {
        "embedding_size": Categorical((32, 64, 128)), "hidden_size": Categorical((32, 64, 128)),
        "max_len": Int(20, 200, log=True), "ode_steps": Int(1, 4), "time_unit_s": LogFloat(60.0, 604800.0),
        "dropout": Float(0.0, 0.5), "learning_rate": LogFloat(5e-4, 2e-2),
    }
    prune_warmup_epochs: ClassVar[int] = 2  # of up to 20 epochs

    def warp(self, gaps_s: np.ndarray) -> np.ndarray:
        """Gap in seconds -> log(1 + gap / time_unit) (negative gaps count as 0)."""
        warped: np.ndarray = np.log1p(np.maximum(gaps_s, 0.0) / self.config.time_unit_s).astype(np.float32)
        return warped

    def fit(self, data: Any, options: FitOptions) -> FitReport:
        """Teacher-forced next-item cross-entropy along each user's timeline."""
        cfg = self.config
        seed_everything(options.seed)
        self._remember_data(data)
        rng = np.random.default_rng(options.seed)
        seqs, times = list(data.sequences()), list(data.time_sequences())
        users = [u for u, s in enumerate(seqs) if len(s) >= 2]
        self.net = net = NeuralODENet(self.n_items, cfg)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.reg)

        def train_epoch(epoch: int) -> float:
            net.train()
            # every event is a target once an epoch: each user's timeline in windows of max_len + 1 (as SASRec)
            windows = [(u, a, b) for u in users for a, b in tile_bounds(len(seqs[u]), cfg.max_len + 1, rng)]
            total, steps = 0.0, 0
            for batch in length_buckets([b - a for _, a, b in windows], cfg.batch_size, rng):
                picked = [windows[i] for i in batch]
                seq, tau = self._pad([seqs[u][a:b] for u, a, b in picked],
                                     [None if times[u] is None else times[u][a:b] for u, a, b in picked])
                h = net.states(seq[:, :-1], tau[:, :-1])  # state after each event
                h_next = net.evolve(h.reshape(-1, h.shape[-1]), tau[:, 1:].reshape(-1, 1))  # to next event
                target = seq[:, 1:].reshape(-1)
                mask = (target != self.n_items) & (seq[:, :-1].reshape(-1) != self.n_items)
                loss = next_item_loss(h_next[mask], net.item.weight[:-1], target[mask],
                                      full_items=cfg.full_softmax_items, negatives=cfg.negatives, rng=rng)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            return total / max(steps, 1)

        return self._train_epochs(options, cfg.epochs, train_epoch)

    def _pad(self, seqs: Sequence[np.ndarray], times: Sequence[np.ndarray | None]) -> tuple[Tensor, Tensor]:
        """Left-pad to a common length; tau[k] is the warped gap from event k-1 to event k (0 first)."""
        length = max(1, max(len(s) for s in seqs))
        items = np.full((len(seqs), length), self.n_items, np.int64)
        taus = np.zeros((len(seqs), length), np.float32)
        for row, (s, t) in enumerate(zip(seqs, times, strict=False)):
            if len(s) == 0:
                continue
            items[row, -len(s) :] = s
            if t is not None and len(t) == len(s) > 1:
                taus[row, -len(s) + 1 :] = self.warp(np.diff(np.asarray(t, np.float64)))
        return torch.from_numpy(items), torch.from_numpy(taus)

    @torch.no_grad()
    def request_state(self, contexts: Sequence[UserContext]) -> tuple[Tensor, Tensor]:
        """State after the last known event and the warped gap to `now`: (B, 2d), (B, 1)."""
        assert self.net is not None
        cfg, seqs, times, gaps = self.config, [], [], []
        for ctx in contexts:
            h = np.asarray(ctx.history, np.int64).reshape(-1)
            ok = (h >= 0) & (h < self.n_items)
            t = np.asarray(ctx.times, np.float64).reshape(-1)[ok] if ctx.times is not None and len(ctx.times) == len(h) \
                else None
            seqs.append(h[ok][-cfg.max_len :])
            times.append(t[-cfg.max_len :] if t is not None else None)
            last = float(t[-1]) if t is not None and len(t) else None
            if last is None:
                gaps.append(0.0)
            else:
                now = float(ctx.now) if ctx.now is not None else last
                gaps.append(now - last)
        items, taus = self._pad(seqs, times)
        device = self.net.h0.device
        state = self.net.states(items.to(device), taus.to(device))[:, -1]
        return state, torch.from_numpy(self.warp(np.asarray(gaps))).unsqueeze(-1).to(device)

    def _score_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:
        assert self.net is not None
        h, tau = self.request_state(contexts)
        rows: np.ndarray = self.net.scores(self.net.evolve(h, tau)).cpu().numpy()
        return rows

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """The state evolved to `now` dotted with the candidates' complex embeddings only (the serving path)."""
        cand, ok, out = candidate_slots(candidates, self.n_items)
        if ok.any() and self.net is not None and len(known(history, self.n_items)):
            self.net.eval()
            with torch.no_grad():
                h, tau = self.request_state([UserContext(history=history, **context)])
                h = self.net.evolve(h, tau)
                items = self.net.item.weight[torch.from_numpy(cand[ok]).to(h.device)]
                out[ok] = (items @ h[0]).cpu().numpy()
        return out

    def prepare_serving(self, device: str = "cpu") -> None:
        """Move the net to ``device``; integrate with the in-module 3/8-rule RK4 (the method torchdiffeq's
        'rk4' uses, on the same grid) instead of odeint, whose per-call overhead dominated 30-event requests."""
        assert self.net is not None
        self.net.to(device).eval()
        self.net.use_torchdiffeq = False

    def step_state(self, state: np.ndarray, item: int, gap_s: float) -> np.ndarray:
        """Online update: evolve a (2d,) state over gap_s seconds, then apply the event's jump."""
        assert self.net is not None
        with torch.no_grad():
            h = torch.from_numpy(np.asarray(state, np.float32)).reshape(1, -1)
            h = self.net.evolve(h, torch.from_numpy(self.warp(np.array([gap_s]))).reshape(1, 1))
            h = self.net.jump(self.net.item(torch.tensor([item])), h)
        stepped: np.ndarray = h[0].numpy()
        return stepped

    def item_embeddings(self) -> np.ndarray:
        """(n_items, 2d) [Re | Im] embeddings; Re<h, e> is the dot product with [Re h | Im h]."""
        assert self.net is not None
        embeddings: np.ndarray = self.net.item.weight[:-1].detach().numpy().copy()
        return embeddings

    def onnx_spec(self) -> OnnxSpec:
        """A state (B, 2d) and a chunk of ``ODE_CHUNK`` events (items and warped gaps, left-padded) -> the state
        after them, and that state evolved over the gap to now; the scorer runs only the chunks a history fills."""
        assert self.net is not None
        chunk = min(ODE_CHUNK, self.config.max_len)
        items = torch.full((2, chunk), self.n_items, dtype=torch.long)
        items[:, -3:] = torch.tensor([0, 1, 2])
        h0 = self.net.h0.detach()
        inputs = (h0.expand(2, -1).clone(), items, torch.zeros(2, chunk), torch.zeros(2, 1))
        dyn = {k: {0: "batch"} for k in ("state", "items", "taus", "tau_out", "next_state", "evolved")}
        aux = {"h0": h0.numpy(), "item_emb": self.item_embeddings()}
        return OnnxSpec(OdeChunkGraph(self.net), inputs, ["state", "items", "taus", "tau_out"],
                        ["next_state", "evolved"], dyn, aux,
                        {"max_len": self.config.max_len, "time_unit_s": self.config.time_unit_s, "chunk": chunk},
                        scorer="ode_chunks")

    def scoring_module(self) -> nn.Module:
        """(state (B, 2d), warped gap (B, 1)) -> scores (B, n_items); exported to ONNX."""
        assert self.net is not None
        return EvolveAndScore(self.net)

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.net = NeuralODENet(self.n_items, self.config)
        load_net_state(self.net, tensors)


class EvolveAndScore(nn.Module):
    """Request-time scoring: evolve the state to `now` with the 3/8-rule RK4, then score all items."""

    def __init__(self, net: NeuralODENet) -> None:
        super().__init__()
        self.net = net

    def forward(self, state: Tensor, tau: Tensor) -> Tensor:
        func = lambda s, y: self.net.vector_field(y, tau)  # noqa: E731
        return self.net.scores(rk4_38(func, state, self.net.steps))


class OdeChunkGraph(nn.Module):
    """A state and a chunk of left-padded events -> the state after them, and that state evolved over tau_out (ONNX)."""

    def __init__(self, net: NeuralODENet) -> None:
        super().__init__()
        self.net = net

    def forward(self, state: Tensor, items: Tensor, taus: Tensor, tau_out: Tensor) -> tuple[Tensor, Tensor]:
        rotation = self.net.rotation()  # folded into one initializer by the exporter's constant folding
        h = self.net.states(items, taus, state, rotation)[:, -1]
        return h, self.net.evolve(h, tau_out, rotation)  # evolve takes the in-module RK4 while exporting
