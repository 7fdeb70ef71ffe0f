"""Torch helpers shared by the neural models: padding, negative sampling, parameter I/O."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn


def pad_left(seqs: Sequence[np.ndarray], max_len: int, offset: int = 1) -> np.ndarray:
    """(B, max_len) int64: the last max_len items of each sequence shifted by `offset`, 0-padded on the left."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = np.asarray(s, dtype=np.int64)[-max_len:]
        if len(s):
            out[i, max_len - len(s):] = s + offset
    return out


class SeenItems:
    """Which (user, item) pairs a log holds, as sorted int64 keys user * n_items + item: membership tests for
    negative sampling in O(interactions) memory (a dense users x items mask is 12 GB at 200k x 60k).
    ``seen[users, items]`` is a boolean array of the broadcast shape, like indexing a dense mask."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> None:
        self.shape = (int(n_users), int(n_items))
        self.keys = np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))

    def __getitem__(self, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        keys = np.asarray(index[0], np.int64) * self.shape[1] + np.asarray(index[1], np.int64)
        if not len(self.keys):
            return np.zeros(keys.shape, bool)
        found: np.ndarray = self.keys[np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)] == keys
        return found


def seen_matrix(seqs: Sequence[np.ndarray], n_items: int) -> SeenItems:
    """The items each user of `seqs` interacted with (user u = position u)."""
    empty = np.zeros(0, np.int64)
    users = np.concatenate([empty, *(np.full(len(s), u, np.int64) for u, s in enumerate(seqs))])
    items = np.concatenate([empty, *(np.asarray(s, np.int64) for s in seqs)])
    return SeenItems(users, items, len(seqs), n_items)


def sample_negatives(users: np.ndarray, seen: SeenItems, rng: np.random.Generator | torch.Generator,
                     size: tuple[int, ...] | None = None, tries: int = 10) -> np.ndarray:
    """Uniform items the user has not seen (resampled up to `tries` times); shape of users or `size`. Draws come
    from a numpy or a torch generator (the same stream either model was trained with)."""
    n_items = seen.shape[1]

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(rng, torch.Generator):
            return torch.randint(0, n_items, shape, generator=rng).numpy().copy()
        return rng.integers(0, n_items, size=shape)

    shape = size if size is not None else users.shape
    neg = draw(tuple(shape))
    u = np.broadcast_to(users.reshape(users.shape + (1,) * (len(shape) - users.ndim)), shape)
    for _ in range(tries):
        bad = seen[u, neg]
        if not bad.any():
            break
        neg[bad] = draw((int(bad.sum()),))
    return neg


def next_item_loss(h: torch.Tensor, item_weights: torch.Tensor, positives: torch.Tensor, *, full_items: int,
                   negatives: int, rng: np.random.Generator) -> torch.Tensor:
    """Softmax cross-entropy of each row's next item (h: (n, d), item_weights: (n_items, d), positives: (n,)).

    Over the whole catalogue while it has at most `full_items` items; past that, full softmax costs
    O(rows x n_items) per step, so each row's positive competes with `negatives` items drawn uniformly and shared
    by the batch (sampled softmax, Jean et al. 2015; uniform draws need no log-q correction), a draw equal to the
    row's positive masked out. No random numbers are used below `full_items`.
    """
    import torch.nn.functional as F

    n_items = item_weights.shape[0]
    if n_items <= full_items:
        return F.cross_entropy(h @ item_weights.T, positives)
    neg = torch.from_numpy(rng.integers(0, n_items, size=negatives)).to(h.device)
    pos_logit = (h * item_weights[positives]).sum(-1, keepdim=True)
    neg_logit = (h @ item_weights[neg].T).masked_fill(neg[None, :] == positives[:, None], float("-inf"))
    target = torch.zeros(len(h), dtype=torch.long, device=h.device)
    return F.cross_entropy(torch.cat([pos_logit, neg_logit], 1), target)


def graph_batch(n_examples: int, batch_size: int, max_steps: int) -> int:
    """The batch size of one epoch of a model that propagates the whole graph at every step (LightGCN, HGCF).

    Each step costs O(ratings) (the propagation), so with a fixed batch an epoch costs O(ratings^2 / batch). Up to
    ``max_steps * batch_size`` examples the configured batch is kept (every dataset the models were tuned on);
    past it the batch grows with the data so an epoch makes at most ``max_steps`` propagations and costs
    O(ratings). The caller scales its step size by the square root of the batch ratio (Adam's and SGD's
    square-root rule, Malladi et al., NeurIPS 2022), since an epoch then takes fewer, less noisy steps."""
    return max(batch_size, -(-n_examples // max(1, max_steps)))


def normalized_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, *,
                         degree_dtype: type = np.float64) -> torch.Tensor:
    """Symmetric-normalised bipartite adjacency D^-1/2 A D^-1/2 of the distinct (user, item) pairs, as a coalesced
    sparse COO (n_users + n_items)^2 float32 tensor; items are numbered after the users. LightGCN and HGCF."""
    pairs = np.unique(np.stack([users, items], 1), axis=0)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1] + n_users]).astype(np.int64)
    cols = np.concatenate([pairs[:, 1] + n_users, pairs[:, 0]]).astype(np.int64)
    n = n_users + n_items
    deg: np.ndarray = np.bincount(rows, minlength=n).astype(degree_dtype)
    inv_sqrt: np.ndarray = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0).astype(degree_dtype)
    vals = (inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)
    return torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(vals), (n, n),
                                   check_invariants=True).coalesce()


class SymmetricSpMM(torch.autograd.Function):
    """A @ x for a symmetric sparse A; the backward reuses A instead of transposing it (3-4x faster on CPU). LightGCN
    and HGCF propagate with it."""

    @staticmethod
    def forward(ctx: Any, adjacency: Tensor, x: Tensor) -> Tensor:  # noqa: D102
        ctx.adjacency = adjacency
        out: Tensor = torch.sparse.mm(adjacency, x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:  # noqa: D102
        return None, torch.sparse.mm(ctx.adjacency, grad)

    if TYPE_CHECKING:  # torch's Function.apply is untyped (*args): the signature of forward, for the checker only

        @classmethod
        def apply(cls, adjacency: Tensor, x: Tensor) -> Tensor: ...


def csr_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, *,
                  degree_dtype: type = np.float64) -> torch.Tensor:
    """:func:`normalized_adjacency` as a sparse CSR tensor (:class:`SymmetricSpMM`'s layout)."""
    coo = normalized_adjacency(users, items, n_users, n_items, degree_dtype=degree_dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.to_sparse_csr()


def n_parameters(net: nn.Module) -> int:
    """Number of trainable scalars."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def state_numpy(net: nn.Module) -> dict[str, np.ndarray]:
    """A module's state dict as contiguous numpy arrays (for safetensors)."""
    return {k: v.detach().cpu().contiguous().numpy() for k, v in net.state_dict().items()}


def load_state_numpy(net: nn.Module, tensors: dict[str, np.ndarray]) -> None:
    """Load a state dict written by :func:`state_numpy` (strict)."""
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)


def clone_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the parameters (best-epoch snapshot)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class FastDropout(nn.Module):
    """Inverted dropout from a uniform draw: the same distribution as nn.Dropout, about 2.5x faster on CPU.

    torch's CPU dropout draws its mask with bernoulli_, which dominated SASRec's training time
    (3.4 of 14.8 s per two epochs in a profile); a uniform draw compared with p gives the same
    Bernoulli(1 - p) mask. Identity in eval mode, so exported graphs are unchanged.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))
