"""Plumbing shared by the four torch models (KAN, Neural-ODE, hyperbolic, diffusion).

Builds on :class:`ml_core.models.base.RecommenderBase` (score via score_batch, artifacts, the history cleaner
``known``), :mod:`ml_core.models.layers` (torch helpers shared with SASRec and LightGCN) and
:func:`ml_core.training.run_epochs` (early stopping on validation NDCG@10).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..interface import FitOptions, FitReport, UserContext
from ..training import run_epochs, set_seed
from .base import RecommenderBase, known
from .layers import n_parameters


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for sampling."""
    set_seed(seed)
    return torch.Generator().manual_seed(seed)


def tile_bounds(n: int, size: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """[start, end) windows of up to ``size`` events whose targets (every event but a window's first) cover all n.

    The most recent window always ends at the sequence end; the others are cut at a random phase each epoch,
    so the context of each target varies from epoch to epoch (SASRec's and the Neural-ODE's training windows).
    """
    step = size - 1
    if n <= size:
        return [(0, n)]
    ends = [n]
    end = n - int(rng.integers(1, step + 1))
    while end > 1:
        ends.append(end)
        end -= step
    return [(max(0, e - size), e) for e in ends]


def length_buckets(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of window indices with similar lengths (less padding), in random order."""
    sizes = np.asarray(lengths)
    order = np.lexsort((rng.random(len(sizes)), sizes))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def multi_hot(histories: Sequence[Sequence[int]], n_items: int) -> torch.Tensor:
    """(B, n_items) float32 0/1 matrix of the (known) items in each history."""
    x = torch.zeros(len(histories), n_items)
    for row, hist in enumerate(histories):
        h = known(hist, n_items)
        if len(h):
            x[row, torch.from_numpy(h)] = 1.0
    return x


class TorchRecommender(RecommenderBase):
    """Base of the torch models: rows with a known history are scored by `_score_rows`, the rest NaN."""

    net: torch.nn.Module | None = None

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """(len(contexts), n_items) float32; rows without a known history item are NaN."""
        out = np.full((len(contexts), self.n_items), np.nan, dtype=np.float32)
        rows = [i for i, c in enumerate(contexts) if len(known(c.history, self.n_items))]
        if rows and self.net is not None:
            self.net.eval()
            with torch.no_grad():
                out[rows] = np.asarray(self._score_rows([contexts[i] for i in rows]), dtype=np.float32)
        return out

    def _score_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _train_epochs(self, options: FitOptions, epochs: int, train_epoch: Callable[[int], float],
                      module: torch.nn.Module | None = None) -> FitReport:
        """The shared epoch loop; best-epoch weights of `module` (default self.net) are restored."""
        net = module if module is not None else self.net
        assert net is not None
        cpu_start = time.process_time()
        report = run_epochs(model=self, options=options, epochs=epochs, train_epoch=train_epoch,
                            get_state=lambda: copy.deepcopy(net.state_dict()), set_state=net.load_state_dict,
                            desc=self.name)
        report.n_parameters = n_parameters(net)
        report.extra["cpu_seconds"] = time.process_time() - cpu_start  # honest under CPU contention
        return report

    # -- artifacts -------------------------------------------------------------------------
    def _tensors(self) -> dict[str, np.ndarray]:
        """Everything that defines the fitted model, as named arrays (default: the net's state)."""
        assert self.net is not None, "fit() or load() first"
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def _state(self) -> dict[str, Any]:
        """JSON-able fitted state beyond config and vocab."""
        return {}

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def export(self, directory: Path) -> None:
        """config.json, weights.safetensors, vocab.json, state.json and a checksummed manifest."""
        self._save(directory, self._tensors(), state=self._state())

    @classmethod
    def load(cls, directory: Path) -> TorchRecommender:
        """Verify checksums, rebuild the network from config and weights (nothing unpickled)."""
        model, content = cls._load_common(directory)
        model._restore(content["tensors"], content["state"])
        if model.net is not None:
            model.net.eval()
        return model


def load_net_state(net: torch.nn.Module, tensors: dict[str, np.ndarray]) -> None:
    """Load the 'net.*' arrays into a module (strict)."""
    state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("net.")}
    net.load_state_dict(state, strict=True)
