"""The public contract every APEX model follows (see docs/ARCHITECTURE.md).

Item and user arguments are *internal indices* from :class:`ml_core.data.Vocabulary`
(0..n-1). An index outside the vocabulary (e.g. -1 for a movie the model never saw)
is "unknown" and scores NaN; the ranking layer fills such gaps from a baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .data import Interactions


@dataclass(frozen=True)
class FitOptions:
    """Run-time knobs that are not model hyperparameters."""

    seed: int = 42
    device: str = "cpu"
    max_epochs: int | None = None  # overrides config.epochs when set (tests use 1-2)
    progress: bool = True  # tqdm progress bars
    validation: Any = None  # an ml_core.evaluation split used for early stopping
    patience: int = 5  # epochs without validation NDCG@10 gain before stopping
    # called with (epoch, validation NDCG@10) after every validation check; returning True stops the fit
    # (the tuner reports the curve to its pruner here). Budgets are epochs, never seconds.
    on_validation: Callable[[int, float], bool] | None = None


@dataclass
class FitReport:
    """What a fit did: epochs run, wall time, validation curve, parameter count."""

    epochs: int = 0
    seconds: float = 0.0
    n_parameters: int = 0
    val_curve: list[float] = field(default_factory=list)  # validation NDCG@10 per epoch
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserContext:
    """What a model may know about the user at request time.

    history: chronological item indices (oldest first).
    times: unix seconds of each history event (same length), when known.
    user: the training user index, when the user was seen in training; else None.
    now: unix seconds of the request (defaults to the last event time).
    """

    history: Sequence[int]
    times: Sequence[float] | None = None
    user: int | None = None
    now: float | None = None


@runtime_checkable
class Recommender(Protocol):
    """fit / score / export / load: the one interface of every model."""

    name: str
    config: Any

    def fit(self, data: Interactions, options: FitOptions) -> FitReport: ...

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """One float32 per candidate, in order; NaN for unknown items/users.

        ``context`` may carry ``times``, ``user`` and ``now`` (see UserContext).
        """
        ...

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        """Scores of every item for each context: float32 (len(contexts), n_items)."""
        ...

    def export(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


# -- capabilities ------------------------------------------------------------------------------------
# What a model can do beyond fit/score/export/load. A model lists the protocols it implements in its
# ``capabilities`` class attribute (tests/ml_core/test_capabilities.py checks that the list is exactly what
# ``isinstance`` finds on a fitted model, and that each capability works); callers ask ``isinstance(model,
# Protocol)``, never ``hasattr``. A subclass that loses a capability sets the method to None (``onnx_spec =
# None``), which runtime protocol checks treat as absent. Models do not subclass the protocols: a nominal
# subclass would pass ``isinstance`` even with the method switched off.
@runtime_checkable
class EmbeddingModel(Protocol):
    """Item vectors whose dot product with a user vector scores items (the serving bundle's retrieval space)."""

    def item_embeddings(self) -> np.ndarray | None:
        """(n_items, d) float32, or None when the model has none."""
        ...


@runtime_checkable
class UserStateScorer(Protocol):
    """Scoring split into a user-side state (cached per request inputs) and a cheap per-candidate step."""

    def user_state(self, history: Sequence[int], **context: Any) -> Any:
        """What the model computes from the user alone; None for a history it does not know."""
        ...

    def score_state(self, state: Any, candidates: np.ndarray) -> np.ndarray:
        """Scores of ``candidates`` from a ``user_state`` (NaN for unknown items, or everywhere for None)."""
        ...


@runtime_checkable
class OnlineRanker(Protocol):
    """A ranker the online learner trains with bounded SGD steps on fresh events (on its own ``learner_copy``)."""

    net: Any  # the torch module the steps update (None until fitted)
    config: Any

    def partial_fit(self, contexts: Sequence[UserContext], positives: Sequence[int]) -> float:
        """One SGD step on (context, positive item) pairs; returns the loss."""
        ...

    def learner_copy(self) -> OnlineRanker:
        """A ranker for the online learner to step: its own weights, read-only parts shared with this one."""
        ...


@dataclass(frozen=True)
class OnnxSpec:
    """What ``ml_core.onnx_export`` needs to export a model's scoring graph (built by the model)."""

    module: Any  # the torch.nn.Module to trace
    inputs: tuple[Any, ...]  # example inputs
    input_names: list[str]
    output_names: list[str] = field(default_factory=lambda: ["scores"])
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    aux: dict[str, np.ndarray] = field(default_factory=dict)  # arrays the onnxruntime scorer needs (aux.npz)
    meta: dict[str, Any] = field(default_factory=dict)  # extra meta.json entries
    autograd: bool = False  # trace with autograd on (SASRec: the fused no-grad attention kernel has no ONNX op)
    scorer: str = ""  # how onnxruntime feeds the graph: one of ml_core.onnx_export.SCORERS (required to export)


@runtime_checkable
class OnnxExportable(Protocol):
    """A fitted model whose scoring path exports to ONNX (ml_core.onnx_export)."""

    name: str
    n_items: int

    def onnx_spec(self) -> OnnxSpec: ...
