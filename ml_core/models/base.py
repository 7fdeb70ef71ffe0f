"""Shared plumbing for models: `score` from `score_batch`, vocab bookkeeping, config I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from .. import artifacts
from ..data import Interactions
from ..interface import FitOptions, FitReport, UserContext


class RecommenderBase:
    """Implements `score` on top of `score_batch`; subclasses set `name` and `config_cls`."""

    name: str = ""
    config_cls: type = object
    # what the model can do beyond fit/score/export/load: ml_core.interface protocols (EmbeddingModel,
    # OnnxExportable, OnlineRanker, ...); callers check isinstance, tests/ml_core/test_capabilities.py checks both agree
    capabilities: ClassVar[frozenset[type]] = frozenset()
    n_items: int = 0
    item_raw_ids: list[int]
    user_raw_ids: list[int]
    data_snapshot: dict[str, Any] | None = None

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.config_cls()
        self.item_raw_ids, self.user_raw_ids = [], []

    def _remember_data(self, data: Interactions) -> None:
        self.n_items = data.n_items
        self.n_users = data.n_users
        self.item_raw_ids = data.item_vocab.to_json()
        self.user_raw_ids = data.user_vocab.to_json()
        self.data_snapshot = data.snapshot()

    def _clean_history(self, history: Sequence[int]) -> np.ndarray:
        """History as int64 with unknown (out of range) items dropped."""
        return known(history, self.n_items)

    def _known_user(self, ctx: UserContext) -> int | None:
        u = ctx.user
        return int(u) if u is not None and 0 <= int(u) < getattr(self, "n_users", 0) else None

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        """One float32 per candidate, in order; NaN for unknown items (and users the model cannot score).

        This fallback scores the whole catalogue; the serving models override it to score only the candidates.
        """
        ctx = UserContext(history=history, **context)
        full = np.asarray(self.score_batch([ctx])[0], dtype=np.float32)
        cand, ok, out = candidate_slots(candidates, self.n_items)
        out[ok] = full[cand[ok]]
        return out

    def prepare_serving(self, device: str = "cpu") -> None:
        """Precompute item-side state for per-request scoring (and move nets to ``device``); default: nothing."""

    def fit(self, data: Interactions, options: FitOptions) -> FitReport:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- artifacts -------------------------------------------------------------------------
    def _save(self, directory: Path, tensors: dict[str, np.ndarray], state: dict[str, Any] | None = None) -> None:
        artifacts.save_artifact(
            directory, model=self.name, config=dataclasses.asdict(self.config), tensors=tensors,
            vocab={"items": self.item_raw_ids, "users": self.user_raw_ids},
            data_snapshot=self.data_snapshot, state=state)

    @classmethod
    def _load_common(cls, directory: Path) -> tuple[Self, dict[str, Any]]:
        content = artifacts.load_artifact(Path(directory), model=cls.name)
        fields = {f.name for f in dataclasses.fields(cls.config_cls)}
        config = cls.config_cls(**{k: v for k, v in content["config"].items() if k in fields})
        model = cls(config)
        model.item_raw_ids = content["vocab"]["items"]
        model.user_raw_ids = content["vocab"].get("users", [])
        model.n_items = len(model.item_raw_ids)
        model.n_users = len(model.user_raw_ids)
        model.data_snapshot = content["manifest"].get("data_snapshot")
        return model, content


def known(history: Sequence[int] | np.ndarray, n_items: int) -> np.ndarray:
    """History as int64 array with unknown (out-of-vocabulary) items dropped (the one history cleaner)."""
    h = np.asarray(history, dtype=np.int64).reshape(-1)
    return h[(h >= 0) & (h < n_items)]


def candidate_slots(candidates: Any, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidates as int64, mask of those inside the model's item space, a NaN float32 output to fill)."""
    cand = np.asarray(candidates, dtype=np.int64).ravel()
    return cand, (cand >= 0) & (cand < n_items), np.full(len(cand), np.nan, dtype=np.float32)


def history_matrix(contexts: Sequence[UserContext], n_items: int) -> Any:
    """Binary CSR (len(contexts), n_items) of each context's known history items."""
    return binary_rows([known(ctx.history, n_items) for ctx in contexts], n_items)


def binary_rows(histories: Sequence[np.ndarray], n_items: int) -> Any:
    """Binary CSR (len(histories), n_items): row i is 1 at the items of histories[i] (known items only)."""
    from scipy import sparse

    rows, cols = [], []
    for i, h in enumerate(histories):
        h = np.unique(known(h, n_items))
        rows.append(np.full(len(h), i, np.int64))
        cols.append(h)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return sparse.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(histories), n_items))


def empty_rows(contexts: Sequence[UserContext], n_items: int) -> np.ndarray:
    """Boolean mask of contexts with no known history item."""
    return np.asarray(history_matrix(contexts, n_items).getnnz(axis=1) == 0)
