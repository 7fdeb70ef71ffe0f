"""DiffRec's Gaussian process (schedule, q-sample, reweighted x0 loss, reverse means) and L-DiffRec's autoencoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def linear_variance_betas(steps: int, scale: float, low: float, high: float, max_beta: float = 0.999) -> np.ndarray:
    """DiffRec's "linear-var" schedule: 1 - alpha_bar grows linearly from scale*low to scale*high."""
    variance = np.linspace(scale * low, scale * high, steps, dtype=np.float64)
    alpha_bar = 1.0 - variance
    steps_betas = [1.0 - alpha_bar[0]]
    for i in range(1, steps):
        steps_betas.append(min(1.0 - alpha_bar[i] / alpha_bar[i - 1], max_beta))
    betas = np.asarray(steps_betas)
    betas[0] = 1e-5  # fixed first beta, as in the reference code (Sohl-Dickstein et al. 2.4.1)
    return betas


class GaussianDiffusion(nn.Module):
    """Forward noising, step-reweighted x0-prediction loss and deterministic reverse process."""

    keep_history = 10  # losses remembered per step for importance sampling (paper's default)
    # buffers, one value per step (steps,): the schedule's coefficients, then the loss history for sampling
    sqrt_ac: Tensor
    sqrt_1m_ac: Tensor
    coef_x0: Tensor
    coef_xt: Tensor
    step_weight: Tensor
    loss_history: Tensor  # (steps, keep_history) float64
    loss_count: Tensor  # long

    def __init__(self, steps: int, scale: float, low: float, high: float) -> None:
        super().__init__()
        self.steps = steps
        betas = linear_variance_betas(steps, scale, low, high)
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.append(1.0, ac[:-1])

        def f32(a: np.ndarray) -> Tensor:
            return torch.tensor(a, dtype=torch.float32)

        self.register_buffer("sqrt_ac", f32(np.sqrt(ac)), persistent=False)
        self.register_buffer("sqrt_1m_ac", f32(np.sqrt(1.0 - ac)), persistent=False)
        self.register_buffer("coef_x0", f32(betas * np.sqrt(ac_prev) / (1.0 - ac)), persistent=False)
        self.register_buffer("coef_xt", f32((1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac)), persistent=False)
        snr = ac / (1.0 - ac)
        weight = np.append(1.0, snr[:-1] - snr[1:])  # SNR(t-1) - SNR(t); 1 at t = 0
        self.register_buffer("step_weight", f32(weight), persistent=False)
        self.register_buffer("loss_history", torch.zeros(steps, self.keep_history, dtype=torch.float64),
                             persistent=False)
        self.register_buffer("loss_count", torch.zeros(steps, dtype=torch.long), persistent=False)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        return self.sqrt_ac[t, None] * x0 + self.sqrt_1m_ac[t, None] * noise

    def _sample_t(self, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Importance sampling of steps by loss history once every step has 10 losses; else uniform."""
        if bool((self.loss_count == self.keep_history).all()):
            pt = torch.sqrt((self.loss_history**2).mean(-1))
            pt = pt / pt.sum() * (1 - 0.1) + 0.1 / self.steps
            t = torch.multinomial(pt, batch, replacement=True, generator=gen)
            return t, (pt[t] * self.steps).float()
        return torch.randint(0, self.steps, (batch,), generator=gen), torch.ones(batch)

    def training_loss(self, model: nn.Module, x0: Tensor, reweight: bool, gen: torch.Generator,
                      return_pred: bool = False) -> Any:
        t, pt = self._sample_t(len(x0), gen)
        noise = torch.randn(x0.shape, generator=gen)
        x0_hat = model(self.q_sample(x0, t, noise), t)
        mse = ((x0 - x0_hat) ** 2).mean(dim=1)
        loss = self.step_weight[t] * mse if reweight else mse
        with torch.no_grad():
            for step, value in zip(t.tolist(), loss.detach().double().tolist(), strict=False):
                if self.loss_count[step] == self.keep_history:
                    self.loss_history[step, :-1] = self.loss_history[step, 1:].clone()
                    self.loss_history[step, -1] = value
                else:
                    self.loss_history[step, self.loss_count[step]] = value
                    self.loss_count[step] += 1
        loss = (loss / pt).mean()
        return (loss, x0_hat) if return_pred else loss

    def reverse(self, model: nn.Module, x: Tensor) -> Tensor:
        """From the observed vector (sampling_steps = 0: no noise added) down to t = 0 by posterior means."""
        for i in reversed(range(self.steps)):
            t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
            x0_hat = model(x, t)
            x = self.coef_x0[i] * x0_hat + self.coef_xt[i] * x
        return x


def item_groups(data: Any, n_groups: int, seed: int) -> np.ndarray:
    """Group id per item: k-means on truncated-SVD item factors of the training matrix."""
    from scipy.sparse.linalg import svds
    from sklearn.cluster import KMeans

    m = data.matrix().astype(np.float64)
    k = max(2, min(32, min(m.shape) - 1))
    _, s, vt = svds(m, k=k, random_state=seed)
    factors = (vt.T * np.sqrt(s)).astype(np.float64)
    labels = KMeans(n_clusters=n_groups, n_init=4, random_state=seed).fit_predict(factors)
    groups: np.ndarray = labels.astype(np.int64)
    return groups


class GroupAutoencoder(nn.Module):
    """L-DiffRec: one VAE encoder/decoder per item group, latents concatenated."""

    groups: Tensor  # buffer (n_items,): each item's group id

    def __init__(self, groups: np.ndarray, latent_size: int) -> None:
        super().__init__()
        n_groups = int(groups.max()) + 1
        self.register_buffer("groups", torch.from_numpy(np.asarray(groups, np.int64)))
        self.index = [torch.from_numpy(np.flatnonzero(groups == g)) for g in range(n_groups)]
        sizes = [len(ix) for ix in self.index]
        self.dims = [max(1, round(latent_size * s / sum(sizes))) for s in sizes]
        self.latent_dim = sum(self.dims)
        self.encoders = nn.ModuleList(nn.Linear(s, 2 * d) for s, d in zip(sizes, self.dims, strict=False))
        self.decoders = nn.ModuleList(nn.Linear(d, s) for s, d in zip(sizes, self.dims, strict=False))
        for layer in [*self.encoders, *self.decoders]:
            nn.init.xavier_normal_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def encode(self, x: Tensor, sample: bool = False, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(B, n_items) -> latent (B, latent_dim) and the KL to N(0, I)."""
        x = F.normalize(x, dim=-1)
        zs, kl = [], x.new_zeros(())
        for ix, enc, d in zip(self.index, self.encoders, self.dims, strict=False):
            h = enc(x[:, ix])
            mu, logvar = h[:, :d], h[:, d:].clamp(-10, 10)
            z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar) if sample else mu
            kl = kl + (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()
            zs.append(z)
        return torch.cat(zs, dim=1), kl

    def decode(self, z: Tensor) -> Tensor:
        """(B, latent_dim) -> item logits (B, n_items) in the original item order."""
        out = z.new_zeros(z.shape[0], len(self.groups))
        start = 0
        for ix, dec, d in zip(self.index, self.decoders, self.dims, strict=False):
            out[:, ix] = dec(z[:, start : start + d])
            start += d
        return out

    def item_vectors(self) -> Tensor:
        """Each item's decoder weight row, zero-padded into the item's group block."""
        out = torch.zeros(len(self.groups), self.latent_dim)
        start = 0
        decoders = [dec for dec in self.decoders if isinstance(dec, nn.Linear)]  # typed: ModuleList yields Modules
        for ix, dec, d in zip(self.index, decoders, self.dims, strict=False):
            out[ix, start : start + d] = dec.weight.detach()
            start += d
        return out
