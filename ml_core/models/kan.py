"""KAN ranker (Liu et al. 2024): a Kolmogorov-Arnold network scoring (user, candidate) feature vectors.

Follows Kolmogorov-Arnold Networks (Liu et al. 2024): every edge of every layer carries a learnable
B-spline activation (order `spline_order`, `grid_size` intervals, Cox-de Boor bases) plus a SiLU base
path, phi(x) = w_b silu(x) + w_s sum_i c_i B_i(x); the grid is updated from data (knots move to a
quantile/uniform blend of the layer's inputs and the coefficients are refitted by least squares to
keep each curve) during the first epochs, and the paper's L1 + entropy sparsity regulariser is
available (`reg`). Layer code follows the widely used "efficient-kan" formulation (bases evaluated
in batch, one matmul per layer) rather than pykan's per-edge objects.
Role here: the ensemble's feature-based ranker. Per (user, candidate) it reads 13 features
(base-model scores: EASE, z-scored EASE, item-cosine to the last 10 items and to the last item, a
truncated-SVD embedding score; popularity: overall, last week, last 4 weeks, item age at request
time; metadata: release year, distance to the user's mean year, genre-profile cosine; history length).
The base models are fitted inside the ranker. Stacking: the ranker learns on the last
`labels_per_user` training events of each user with features from base models fitted on the
earlier events, against EASE-hard and uniform negatives (listwise softmax); serving features come
from base models refitted on all training events. `partial_fit` runs one bounded SGD step on a
mini-batch of new events (the online learner's update).
Comparison with an MLP of equal parameter count on the same features, lists and training
(`ranker="mlp"`): docs/KAN_VS_MLP.md, written by `python benchmarks/kan_vs_mlp.py`.
Departures: no symbolic-formula extraction or pruning (the paper's interpretability workflow);
one hidden KAN layer of width 8 (the paper's networks are similarly small).
Size: past `dense_items` (15,000) items the item-cosine features keep each item's 200 nearest
neighbours and EASE its 15,000 most interacted items plus a sparse remainder, so no item x item array
is held; at inference each input's k + 1 nonzero B-spline bases are evaluated (de Boor's local
triangle), the same values as the full recursion used in training.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..interface import FitOptions, FitReport, OnlineRanker, OnnxExportable, OnnxSpec, UserContext
from ..tuning import Categorical, Distribution, Int, LogFloat
from .base import known
from .kan_features import DENSE_ITEMS, FEATURES, NEIGHBOURS, FeatureBuilder
from .kan_layers import KANNet, MLPNet
from .layers import n_parameters
from .neural_common import TorchRecommender, load_net_state, seed_everything

CARD = __doc__  # the model card text (rendered by ml_core.cards via the module docstring)


@dataclass(frozen=True)
class KANConfig:
    """KAN ranker hyperparameters."""

    hidden: tuple[int, ...] = (8,)  # hidden widths; input is the 13 features, output one score
    grid_size: int = 5  # B-spline grid intervals G
    spline_order: int = 3  # B-spline order k
    grid_update_epochs: int = 2  # update the grid from data at the start of these first epochs
    ranker: str = "kan"  # "kan", or "mlp" for the equal-parameter comparison
    learning_rate: float = 3e-3
    reg: float = 0.0  # weight of the paper's L1 + entropy spline regulariser
    epochs: int = 4
    batch_size: int = 64  # training lists per step
    labels_per_user: int = 3  # last events per user used as ranking labels
    n_hard: int = 50  # negatives from the EASE top-200
    n_uniform: int = 50  # uniform negatives
    ease_reg: float = 250.0
    svd_factors: int = 64
    dense_items: int = DENSE_ITEMS  # above: top-`neighbours` cosine and EASE's head + sparse remainder
    neighbours: int = NEIGHBOURS
    online_learning_rate: float = 1e-3  # partial_fit SGD step size
    max_grad_norm: float = 1.0  # partial_fit gradient clipping


def widths(config: KANConfig) -> list[int]:
    """Layer widths of the ranker; the MLP's single hidden layer matches the KAN's parameter count."""
    kan = [len(FEATURES), *config.hidden, 1]
    if config.ranker == "kan":
        return kan
    per_edge = config.grid_size + config.spline_order + 2
    kan_params = sum(a * b * per_edge for a, b in zip(kan[:-1], kan[1:], strict=False))
    f = len(FEATURES)
    return [f, max(1, round((kan_params - 1) / (f + 2))), 1]


def build_net(config: KANConfig) -> KANNet | MLPNet:
    if config.ranker == "kan":
        return KANNet(widths(config), config.grid_size, config.spline_order)
    if config.ranker == "mlp":
        return MLPNet(widths(config))
    raise ValueError(f"KANConfig.ranker must be 'kan' or 'mlp', not {config.ranker!r}")


class KANRanker(TorchRecommender):
    """Feature-based ranker with base models fitted inside; supports cheap `partial_fit` updates."""

    capabilities: ClassVar[frozenset[type]] = frozenset({OnlineRanker, OnnxExportable})  # ml_core.interface protocols
    name = "kan"
    config_cls = KANConfig
    # what the features do without the metadata they use (the card lists the ones that applied)
    metadata_fallbacks: ClassVar[dict[str, str]] = {
        "genres": "genre features unavailable (genre_cos is 0), ranking on interaction and popularity features",
        "years": "release-year features unavailable (year and year_gap are constant)",
        "timestamps": "no timestamps: recent-popularity and item-age features (pop_1w, pop_4w, item_age_w) are "
                      "constant; recency comes from the order of events",
    }
    # Liu et al. 2024: cubic splines (k 3), grids of 3..20 intervals refined from coarse, small widths, the L1 +
    # entropy regulariser weighted 1e-4..1e-2; lr searched as for the other rankers
    search_space: ClassVar[dict[str, Distribution]] = {
        "hidden": Categorical(((4,), (8,), (16,), (8, 8))), "grid_size": Int(3, 12), "spline_order": Int(2, 3),
        "learning_rate": LogFloat(3e-4, 3e-2), "reg": Categorical((0.0, 1e-4, 1e-3, 1e-2)),
        "labels_per_user": Int(1, 5),
    }
    prune_warmup_epochs: ClassVar[int] = 1  # 4 epochs in all: a bad start is already telling

    net: KANNet | MLPNet | None = None

    def __init__(self, config: KANConfig | None = None) -> None:
        super().__init__(config)
        self.features: FeatureBuilder | None = None
        self._gen = torch.Generator().manual_seed(0)

    def fit(self, data: Any, options: FitOptions) -> FitReport:
        """Stack: fit base models on earlier events, learn to rank each user's last events, refit bases."""
        cfg = self.config
        wall, cpu = time.perf_counter(), time.process_time()
        self._gen = gen = seed_everything(options.seed)
        self._remember_data(data)
        prefix, contexts, labels = self._label_split(data, cfg.labels_per_user)
        stage1 = self._builder().fit(prefix)
        x_train = self._training_lists(stage1, contexts, labels, np.random.default_rng(options.seed))
        self.features = self._builder().fit(data)
        self.net = net = build_net(cfg)
        flat = x_train.reshape(-1, x_train.shape[-1])
        net.mean.copy_(flat.mean(0))
        std = flat.std(0)
        net.std.copy_(torch.where(std > 1e-3, std, torch.ones_like(std)))  # constant features stay unscaled
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)

        def train_epoch(epoch: int) -> float:
            net.train()
            if epoch <= cfg.grid_update_epochs:
                pick = torch.randint(0, len(flat), (min(len(flat), 8192),), generator=gen)
                net.update_grid(flat[pick])
            perm, total, steps = torch.randperm(len(x_train), generator=gen), 0.0, 0
            for start in range(0, len(x_train), cfg.batch_size):
                batch = x_train[perm[start : start + cfg.batch_size]]
                loss = self._list_loss(net, batch) + cfg.reg * net.regularization_loss()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + float(loss.detach()), steps + 1
            return total / max(steps, 1)

        report = self._train_epochs(options, cfg.epochs, train_epoch)
        report.extra.update({"train_lists": int(len(x_train)), "widths": widths(cfg),
                             "cpu_seconds": time.process_time() - cpu})
        report.seconds = time.perf_counter() - wall  # base models and feature building included
        return report

    def _builder(self) -> FeatureBuilder:
        cfg = self.config
        return FeatureBuilder(cfg.ease_reg, cfg.svd_factors, dense_items=cfg.dense_items, neighbours=cfg.neighbours)

    @staticmethod
    def _list_loss(net: torch.nn.Module, lists: torch.Tensor) -> torch.Tensor:
        """Listwise softmax cross-entropy; the positive is column 0 of each (n_candidates, F) list."""
        scores = net(lists.reshape(-1, lists.shape[-1])).reshape(lists.shape[0], lists.shape[1])
        return F.cross_entropy(scores, torch.zeros(len(lists), dtype=torch.long))

    @staticmethod
    def _label_split(data: Any, per_user: int) -> tuple[Any, list[UserContext], list[np.ndarray]]:
        """Training log minus each user's last events, one context per user and its label items."""
        order = data.chronological_order()  # equal times by the tie-break key, as in the split
        bounds = data.user_bounds(order)
        is_label = np.zeros(len(data), bool)
        contexts, labels = [], []
        for u in range(data.n_users):
            rows = order[bounds[u] : bounds[u + 1]]
            take = min(per_user, len(rows) - 2)
            if take <= 0:
                continue
            is_label[rows[-take:]] = True
            hist = rows[:-take]
            contexts.append(UserContext(history=data.items[hist], times=data.times[hist], user=u,
                                        now=float(data.times[rows[-take]])))
            labels.append(data.items[rows[-take:]])
        return data.subset(~is_label), contexts, labels

    def _training_lists(self, builder: FeatureBuilder, contexts: list[UserContext], labels: list[np.ndarray],
                        rng: np.random.Generator) -> torch.Tensor:
        """(n_lists, 1 + n_hard + n_uniform, F): positive first, then EASE-hard and uniform negatives.

        Only the EASE rows cover every item (the hard negatives and the z-score need them); the other features are
        built for each list's own items, so the cost grows with users x (items + list length), not x items x F.
        """
        out = []
        for start in range(0, len(contexts), 128):
            chunk = contexts[start : start + 128]
            ease = builder.ease_rows(chunk)
            for row, ctx in enumerate(chunk):
                lists = [cand for pos in labels[start + row]
                         if (cand := self._candidates(ease[row], ctx.history, pos, labels[start + row], rng))
                         is not None]
                if lists:
                    feats = builder.candidate_features(ctx, np.concatenate(lists), ease_all=ease[row])
                    out.extend(np.split(feats, len(lists)))
        return torch.from_numpy(np.stack(out))

    def _candidates(self, ease: np.ndarray, history: Sequence[int], positive: int, avoid: Sequence[int] | np.ndarray,
                    rng: np.random.Generator) -> np.ndarray | None:
        cfg = self.config
        banned = np.zeros(len(ease), bool)
        banned[known(history, len(ease))] = True
        banned[np.asarray(avoid, np.int64)] = True
        pool = np.flatnonzero(~banned)
        if len(pool) == 0:  # the user saw the whole catalogue: nothing to rank the positive against
            return None
        top = pool[np.argsort(-ease[pool])[:200]]
        # a catalogue smaller than the list repeats negatives, so that every list has the same length
        hard = rng.choice(top, size=cfg.n_hard, replace=len(top) < cfg.n_hard)
        uniform = rng.choice(pool, size=cfg.n_uniform, replace=len(pool) < cfg.n_uniform)
        return np.concatenate([[positive], hard, uniform]).astype(np.int64)

    def _score_rows(self, contexts: Sequence[UserContext]) -> np.ndarray:
        assert self.features is not None and self.net is not None
        out = []
        for start in range(0, len(contexts), 64):
            feats = torch.from_numpy(self.features.features(contexts[start : start + 64]))
            out.append(self.net(feats.reshape(-1, feats.shape[-1])).reshape(feats.shape[:2]).numpy())
        return np.concatenate(out)

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """Like score_batch for one user, but features are built for the candidates only (serving path)."""
        cand = np.asarray(candidates, dtype=np.int64).reshape(-1)
        out = np.full(len(cand), np.nan, dtype=np.float32)
        ok = (cand >= 0) & (cand < self.n_items)
        if ok.any() and len(known(history, self.n_items)) and self.net is not None:
            assert self.features is not None  # set together with the net (fit, load)
            feats = self.features.candidate_features(UserContext(history=history, **context), cand[ok])
            self.net.eval()
            with torch.no_grad():
                out[ok] = self.net(torch.from_numpy(feats)).numpy()
        return out

    def feature_matrix(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """(B, n_items, F) features (the ONNX-exported part of scoring starts from these)."""
        assert self.features is not None
        return self.features.features(contexts)

    def partial_fit(self, contexts: Sequence[UserContext], positives: Sequence[int]) -> float:
        """One bounded SGD step on new events (context = history before the event); returns the loss.

        Non-finite losses or gradients are rejected (no update, returns NaN).
        """
        assert self.features is not None and self.net is not None, "fit() or load() first"
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=self._gen)))
        ok = [i for i, c in enumerate(contexts) if len(known(c.history, self.n_items)) and
              0 <= int(positives[i]) < self.n_items]
        if not ok:
            return float("nan")
        ctxs = [contexts[i] for i in ok]
        feats = self.features.features(ctxs)
        lists = np.stack([feats[r, self._candidates(feats[r, :, 0], c.history, int(positives[i]), [positives[i]], rng)]
                          for r, (i, c) in enumerate(zip(ok, ctxs, strict=False))])
        self.net.train()
        params = [p for p in self.net.parameters() if p.requires_grad]
        loss = self._list_loss(self.net, torch.from_numpy(lists))
        grads = torch.autograd.grad(loss, params)
        if not torch.isfinite(loss) or not all(torch.isfinite(g).all() for g in grads):
            return float("nan")
        squares = [(g**2).sum() for g in grads]
        norm = torch.sqrt(sum(squares[1:], squares[0]))
        scale = min(1.0, self.config.max_grad_norm / float(norm + 1e-12))
        with torch.no_grad():
            for p, g in zip(params, grads, strict=False):
                p.sub_(self.config.online_learning_rate * scale * g)
        self.net.eval()
        return float(loss.detach())

    def learner_copy(self) -> KANRanker:
        """The online learner's ranker: its own net and sampler (its steps change them), the features shared."""
        clone = copy.copy(self)
        clone.net = copy.deepcopy(self.net)
        clone._gen = torch.Generator().manual_seed(0)
        clone._gen.set_state(self._gen.get_state())
        return clone

    def n_parameters(self) -> int:
        return n_parameters(self.net) if self.net is not None else 0

    def onnx_spec(self) -> OnnxSpec:
        """Features (N, F) -> ranker scores (N,); the scorer builds the features from the exported arrays."""
        assert self.features is not None and self.net is not None
        aux = dict(self.features.arrays.items())
        feats = torch.zeros(4, self.net.mean.shape[0])
        return OnnxSpec(self.net, (feats,), ["features"], dynamic_axes={"features": {0: "rows"}, "scores": {0: "rows"}},
                        aux=aux, meta={"features": self.features.state()}, scorer="item_features")

    def _tensors(self) -> dict[str, np.ndarray]:
        assert self.features is not None
        return {**super()._tensors(), **{f"features.{k}": v for k, v in self.features.arrays.items()}}

    def _state(self) -> dict[str, Any]:
        assert self.features is not None
        return {"features": self.features.state()}

    def _restore(self, tensors: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.features = FeatureBuilder.restore(state["features"], tensors)
        self.net = build_net(self.config)
        load_net_state(self.net, tensors)


def mlp_twin(config: KANConfig) -> KANConfig:
    """The equal-parameter MLP comparison config (same features, lists and training)."""
    return dataclasses.replace(config, ranker="mlp", grid_update_epochs=0, reg=0.0)
