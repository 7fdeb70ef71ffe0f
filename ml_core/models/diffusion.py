"""DiffRec and L-DiffRec (Wang et al., SIGIR 2023): diffusion over the user's interaction vector.

Follows DiffRec (Wang et al., SIGIR 2023, "Diffusion Recommender Model") and, with `latent=True`,
L-DiffRec. Forward process: Gaussian noise on the user's binary interaction vector with the paper's
"linear-var" schedule scaled by a small `noise_scale` (the user's history must stay recoverable);
beta_1 fixed to 1e-5 as in the reference code. Denoiser: the paper's MLP (input dropout, L2-normalised
input concatenated with a sinusoidal timestep embedding, tanh hidden layer) predicting x0. Loss: MSE
on x0, reweighted per step by SNR(t-1) - SNR(t), timesteps drawn by the paper's loss-history
importance sampling. Inference starts from the observed vector with no added noise
(`sampling_steps=0`) and runs the deterministic posterior means back to t=0; items in the
history are masked (moved below every unseen item) before ranking.
L-DiffRec: items are clustered into `n_groups` groups (k-means on truncated-SVD item factors; the
paper clusters pretrained LightGCN embeddings), each group is compressed by its own VAE encoder,
diffusion runs in the concatenated latent space, and the decoder is trained jointly with
multinomial likelihood + annealed KL, as in the paper. In the latent space the SNR step weights
(hundreds to thousands at this noise scale) swamp the decoder's likelihood and the autoencoder
stops learning (held-out hit@1 0.2 vs 1.0 on the synthetic contract data), so latent runs use
`reweight=False`.
Departures: no temporal reweighting (that is T-DiffRec); the default MLP width and steps were chosen on
ml-100k's validation split, and ``train --tune`` searches them per dataset over the paper's ranges.
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

from ..interface import EmbeddingModel, FitOptions, FitReport, OnnxExportable, OnnxSpec, UserContext
from ..tuning import Categorical, Distribution, Float, Int, LogFloat
from .base import candidate_slots, known
from .diffusion_process import GaussianDiffusion, GroupAutoencoder, item_groups
from .neural_common import TorchRecommender, load_net_state, multi_hot, seed_everything

CARD = __doc__  # the model card text (rendered by ml_core.cards via the module docstring)


@dataclass(frozen=True)
class DiffRecConfig:
    """DiffRec / L-DiffRec hyperparameters (names follow the paper's code where they exist)."""

    hidden_dims: tuple[int, ...] = (1000,)  # denoiser MLP widths
    time_embedding_size: int = 10  # sinusoidal timestep embedding width
    steps: int = 5  # diffusion steps T
    noise_scale: float = 0.005  # scales the noise schedule (small: keeps personalisation)
    noise_min: float = 0.001
    noise_max: float = 0.005
    dropout: float = 0.5  # input dropout of the denoiser
    learning_rate: float = 1e-3
    reg: float = 0.0  # weight decay
    batch_size: int = 256
    epochs: int = 60
    reweight: bool = True  # SNR(t-1) - SNR(t) step weights
    mask_history: bool = True  # rank seen items last
    latent: bool = False  # L-DiffRec: diffuse in an item-group autoencoder's latent space
    n_groups: int = 2  # L-DiffRec item groups
    latent_size: int = 300  # L-DiffRec total latent width
    lamda: float = 0.03  # L-DiffRec KL weight cap (paper's name)
    anneal_steps: int = 500  # L-DiffRec KL annealing updates


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer timesteps: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class DiffRecNet(nn.Module):
    """The paper's denoiser: [normalised x_t ; time embedding] -> tanh MLP -> x0 estimate."""

    def __init__(self, n_in: int, config: DiffRecConfig) -> None:
        super().__init__()
        self.emb_size = config.time_embedding_size
        self.emb_layer = nn.Linear(self.emb_size, self.emb_size)
        dims = [n_in + self.emb_size, *config.hidden_dims]
        self.in_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=False))
        self.out_layer = nn.Linear(dims[-1], n_in)
        self.drop = nn.Dropout(config.dropout)
        for layer in [*self.in_layers, self.out_layer, self.emb_layer]:
            nn.init.xavier_normal_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # (B, n_in), (B,) -> (B, n_in)
        emb = self.emb_layer(timestep_embedding(t, self.emb_size))
        h = torch.cat([self.drop(F.normalize(x, dim=-1)), emb], dim=-1)
        for layer in self.in_layers:
            h = torch.tanh(layer(h))
        x0_hat: Tensor = self.out_layer(h)
        return x0_hat


class DiffRecModel(nn.Module):
    """Denoiser + (optional) group autoencoder + the deterministic reverse process used for scoring."""

    def __init__(self, n_items: int, config: DiffRecConfig, groups: np.ndarray | None = None) -> None:
        super().__init__()
        self.latent = config.latent
        self.autoencoder: GroupAutoencoder | None
        if config.latent:
            assert groups is not None, "the latent variant needs the item groups"
            self.autoencoder = GroupAutoencoder(groups, config.latent_size)
        else:
            self.autoencoder = None
        n_in = self.autoencoder.latent_dim if self.autoencoder is not None else n_items
        self.denoiser = DiffRecNet(n_in, config)
        self.diffusion = GaussianDiffusion(config.steps, config.noise_scale, config.noise_min, config.noise_max)

    def forward(self, x0: Tensor) -> Tensor:  # (B, n_items) observed -> (B, n_items) scores
        """Inference from the observed vector: no added noise, posterior means back to t=0."""
        z = self.autoencoder.encode(x0)[0] if self.autoencoder is not None else x0
        z = self.diffusion.reverse(self.denoiser, z)
        return self.autoencoder.decode(z) if self.autoencoder is not None else z


class DiffRec(TorchRecommender):
    """Diffusion recommender behind the shared Recommender interface."""

    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel, OnnxExportable})  # ml_core.interface protocols
    name = "diffusion"
    config_cls = DiffRecConfig
    net: DiffRecModel | None
    # Wang et al. 2023 (DiffRec) grids: lr 1e-5..1e-3, denoiser [300]/[600]/[1000], steps T 2..100, noise scale
    # 1e-5..1e-1, noise min 5e-4..5e-3, noise max 5e-3..1e-2; dropout as their code (0.5) and below
    search_space: ClassVar[dict[str, Distribution]] = {
        "learning_rate": LogFloat(1e-5, 1e-2), "hidden_dims": Categorical(((300,), (600,), (1000,))),
        "steps": Int(2, 100, log=True), "noise_scale": LogFloat(1e-5, 1e-1), "noise_min": LogFloat(5e-4, 5e-3),
        "noise_max": LogFloat(5e-3, 1e-2), "dropout": Float(0.1, 0.6),
    }

    def __init__(self, config: DiffRecConfig | None = None) -> None:
        super().__init__(config)
        self.groups: np.ndarray | None = None

    def fit(self, data: Any, options: FitOptions) -> FitReport:
        """Train the denoiser (and autoencoder) on the users' training interaction vectors."""
        cfg = self.config
        gen = seed_everything(options.seed)
        self._remember_data(data)
        x_all = data.matrix()  # sparse: a batch's dense rows are built per step (200k x 60k dense: 48 GB)
        x_all = x_all[np.flatnonzero(x_all.getnnz(axis=1) > 0)]
        self.groups = item_groups(data, cfg.n_groups, options.seed) if cfg.latent else None
        self.net = model = DiffRecModel(self.n_items, cfg, self.groups)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.reg)
        updates = 0

        def train_epoch(epoch: int) -> float:
            nonlocal updates
            model.train()
            perm, total = torch.randperm(x_all.shape[0], generator=gen), 0.0
            for start in range(0, x_all.shape[0], cfg.batch_size):
                rows = perm[start : start + cfg.batch_size].numpy()
                loss = self._loss(model, torch.from_numpy(x_all[rows].toarray()), updates, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                updates, total = updates + 1, total + float(loss.detach())
            mean_loss: float = total / max(1, -(-x_all.shape[0] // cfg.batch_size))
            return mean_loss

        report = self._train_epochs(options, cfg.epochs, train_epoch)
        report.extra["groups"] = cfg.n_groups if cfg.latent else 0
        return report

    def _loss(self, model: DiffRecModel, x0: Tensor, updates: int, gen: torch.Generator) -> Tensor:
        cfg = self.config
        if model.autoencoder is None:
            x0_loss: Tensor = model.diffusion.training_loss(model.denoiser, x0, cfg.reweight, gen)
            return x0_loss
        z, kl = model.autoencoder.encode(x0, sample=True, gen=gen)
        loss, z0_hat = model.diffusion.training_loss(model.denoiser, z, cfg.reweight, gen, return_pred=True)
        recon = -(F.log_softmax(model.autoencoder.decode(z0_hat), dim=1) * x0).sum(1).mean()
        lamda = max((1.0 - updates / cfg.anneal_steps) * cfg.lamda, 0.0) if cfg.anneal_steps else cfg.lamda
        total: Tensor = loss + recon + lamda * kl
        return total

    def _score_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:
        assert self.net is not None
        x0 = multi_hot([c.history for c in contexts], self.n_items).to(self.net.denoiser.out_layer.weight.device)
        scores = self.net(x0)
        if self.config.mask_history:
            floor = scores.min(dim=1, keepdim=True).values - 1.0
            scores = torch.where(x0 > 0, floor, scores)
        rows: np.ndarray = scores.cpu().numpy()
        return rows

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """The serving path: the reverse process for one history, with the first step reading the multi-hot
        input as a sum of the history's weight columns and the last step decoding the candidates only.

        The history mask moves seen items below every item, which needs the full last step; candidates
        are normally unseen, so that path runs only when a candidate is in the history (or for L-DiffRec).
        """
        cand, ok, out = candidate_slots(candidates, self.n_items)
        hist = np.unique(known(history, self.n_items))
        if not ok.any() or not len(hist) or self.net is None:
            return out
        self.net.eval()
        with torch.no_grad():
            if self.net.autoencoder is not None or np.isin(cand[ok], hist).any():
                out[ok] = self._score_rows([UserContext(history=history, **context)])[0][cand[ok]]
            else:
                out[ok] = self._reverse_for(hist, cand[ok]).cpu().numpy()
        return out

    def _reverse_for(self, hist: np.ndarray, items: np.ndarray) -> Tensor:
        """DiffRecModel.forward for one multi-hot history, returning only ``items``' final values."""
        assert self.net is not None
        denoiser, diffusion = self.net.denoiser, self.net.diffusion
        device = denoiser.out_layer.weight.device
        h_idx, c_idx = torch.from_numpy(hist).to(device), torch.from_numpy(items).to(device)
        x: Tensor | None = None  # the current x_t, dense after the first step
        for i in reversed(range(diffusion.steps)):
            emb = denoiser.emb_layer(timestep_embedding(torch.full((1,), i, dtype=torch.long), denoiser.emb_size)
                                     .to(device))
            first = denoiser.in_layers[0]
            assert isinstance(first, nn.Linear)
            n_in = first.in_features - denoiser.emb_size
            if x is None:  # F.normalize of a multi-hot row: 1 / sqrt(|h|) on the history columns
                a = first.weight[:, h_idx].sum(1) / float(np.sqrt(len(hist)))
                a = a + first.weight[:, n_in:] @ emb[0] + first.bias
            else:
                a = first(torch.cat([F.normalize(x, dim=-1), emb], dim=-1))[0]
            h = torch.tanh(a)
            for layer in denoiser.in_layers[1:]:
                h = torch.tanh(layer(h))
            x_prev = x if x is not None else torch.zeros(1, n_in, device=device).index_fill_(1, h_idx, 1.0)
            if i > 0:
                x = diffusion.coef_x0[i] * denoiser.out_layer(h)[None] + diffusion.coef_xt[i] * x_prev
            else:
                out = denoiser.out_layer.weight[c_idx] @ h + denoiser.out_layer.bias[c_idx]
                final: Tensor = diffusion.coef_x0[0] * out + diffusion.coef_xt[0] * x_prev[0, c_idx]
                return final
        raise AssertionError("DiffRec needs at least one diffusion step")

    def prepare_serving(self, device: str = "cpu") -> None:
        """Move the denoiser (and autoencoder) to ``device``."""
        assert self.net is not None
        self.net.to(device).eval()

    def item_embeddings(self) -> np.ndarray:
        """Item vectors: the denoiser's output-layer weights (n_items, hidden) or decoder columns."""
        assert self.net is not None
        vectors: np.ndarray
        if self.net.autoencoder is not None:
            vectors = self.net.autoencoder.item_vectors().numpy()
        else:
            vectors = self.net.denoiser.out_layer.weight.detach().numpy().copy()
        return vectors

    def onnx_spec(self) -> OnnxSpec:
        """Multi-hot history (B, n_items) -> reverse process -> history-masked scores."""
        return OnnxSpec(DiffusionGraph(self.net, self.config.mask_history), (torch.zeros(2, self.n_items),),
                        ["history"], dynamic_axes={"history": {0: "batch"}, "scores": {0: "batch"}}, scorer="multi_hot")

    def _tensors(self) -> dict[str, np.ndarray]:
        tensors = super()._tensors()
        if self.groups is not None:
            tensors["groups"] = self.groups.astype(np.int64)
        return tensors

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.groups = np.asarray(tensors["groups"]) if "groups" in tensors else None
        self.net = DiffRecModel(self.n_items, self.config, self.groups)
        load_net_state(self.net, tensors)


@dataclass(frozen=True)
class LDiffRecConfig(DiffRecConfig):
    """L-DiffRec: the same diffusion in an item-group autoencoder's latent space (see the module doc)."""

    latent: bool = True
    reweight: bool = False
    latent_size: int = 100  # on ml-100k's 1.7k items a narrow latent generalised best on validation
    epochs: int = 300
    min_patience: int = 20  # validation checks without gain before stopping (noisy, slow-rising curve)


class LDiffRec(DiffRec):
    """The paper's latent variant, registered on its own so it is trained and reported next to DiffRec."""

    name = "ldiffrec"
    capabilities: ClassVar[frozenset[type]] = frozenset({EmbeddingModel})  # no ONNX export: served by torch
    onnx_spec = None  # type: ignore[assignment]  # None switches the protocol method off (isinstance is False)
    config_cls = LDiffRecConfig
    # DiffRec's space plus the paper's L-DiffRec settings: 1..5 item groups, latent width, KL weight lambda
    search_space: ClassVar[dict[str, Distribution]] = {
        **DiffRec.search_space, "n_groups": Int(1, 5), "latent_size": Categorical((100, 200, 300)),
        "lamda": LogFloat(1e-3, 0.1),
    }


class DiffusionGraph(nn.Module):
    """Multi-hot history -> DiffRec reverse process -> scores with the history moved to the bottom (ONNX)."""

    def __init__(self, net: Any, mask: bool) -> None:
        super().__init__()
        self.net, self.mask = net, mask

    def forward(self, history: Tensor) -> Tensor:
        scores: Tensor = self.net(history)
        if self.mask:
            floor = scores.min(dim=1, keepdim=True).values - 1.0
            scores = torch.where(history > 0, floor, scores)
        return scores
