"""ONNX export of the neural models' scoring paths, INT8 dynamic quantisation, and an onnxruntime scorer.

Each supported model exports the part of scoring that is a tensor program; the numpy part
(multi-hot vector, KAN features, user point lookup, ODE sequence padding) runs in the scorer:

* diffusion: multi-hot history (B, n_items) -> reverse process -> history-masked scores
* sasrec: the last ``max_len`` items (1, max_len), left-padded with 0 -> the user's last hidden state (1, d);
  the scorer dots it with the item embeddings of the candidates only (one request = one row)
* hyperbolic: user points on the ball (B, d) -> negative distances (B, n_items)
* kan: features (N, F) -> ranker scores (N,)
* neural_ode: a state (B, 2d) and a chunk of ``ODE_CHUNK`` events (items and warped gaps, left-padded) -> the
  state after them, and that state evolved over the gap to now (B, 1); the scorer runs only the chunks the
  history fills (a 30-event history: 3 chunks, not the 50 steps of ``max_len``) and dots the evolved state
  with the candidates' complex embeddings (bundles exported before chunking run their one-graph form)

Each model builds its own export in ``onnx_spec()`` (ml_core.interface.OnnxExportable): the module, example
inputs, names, dynamic axes, aux arrays and meta; this module traces it, quantises it and serves it.

Exporter: the legacy TorchScript-based `torch.onnx.export(dynamo=False)` at opset 17, one file
(no external data); the ODE graph unrolls `max_len` steps, so sequences are left-padded to it.
INT8 (`quantize_dynamic`, per-channel QInt8 weights) is kept only when it passes the gate: mean row cosine
>= 0.995 and mean top-10 overlap >= 0.8 against fp32, in the worse of two request groups (random histories,
and coherent ones the model itself grows from a random item, 2-30 long); `meta.json` records both.
LightGCN has no export: its serving path is already a numpy dot product of precomputed embeddings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .interface import OnnxExportable, UserContext, UserStateScorer

log = logging.getLogger(__name__)

OPSET = 17
COSINE_GATE = 0.995
OVERLAP_GATE = 0.8
# How the onnxruntime scorer feeds an exported graph (OnnxSpec.scorer, stored in meta.json as "scorer"):
SCORERS = {
    "multi_hot": "the history as a (B, n_items) multi-hot row in, a score row out (DiffRec)",
    "user_points": "a Poincare user point in (trained, or the history's gyro-midpoint), a score row out (HGCF)",
    "item_features": "(B x n_items, F) candidate features in (ml_core.models.kan_features), scores out (KAN)",
    "user_vector": "item ids in, a user vector out, dotted with the exported item embeddings (SASRec)",
    "ode_chunks": "the state evolved over chunks of (item, gap) events, dotted with item embeddings (Neural-ODE)",
    "ode_graph": "the whole (items, gaps, now) sequence in one graph, a score row out (older Neural-ODE exports)",
}
# exports written before the scorer kind was recorded in meta.json name only their model
_LEGACY_SCORERS = {"diffusion": "multi_hot", "hyperbolic": "user_points", "kan": "item_features",
                   "sasrec": "user_vector", "neural_ode": "ode_graph"}


def supports(model: Any) -> bool:
    """True for the models this module can export: they build their own graph (OnnxExportable) and are fitted."""
    return isinstance(model, OnnxExportable) and getattr(model, "net", None) is not None


# -- export ------------------------------------------------------------------------------------------
def export_model(model: Any, directory: Path, *, int8: bool = True,
                 sample: Sequence[UserContext] | None = None) -> dict[str, Any]:
    """Write model.onnx (+ model.int8.onnx when it passes the gate), aux.npz and meta.json; returns meta."""
    if not supports(model):
        raise ValueError(f"no ONNX export for model {getattr(model, 'name', model)!r}; "
                         "it is not a fitted OnnxExportable")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = model.onnx_spec()
    if spec.scorer not in SCORERS:
        raise ValueError(f"{model.name}: OnnxSpec.scorer {spec.scorer!r} is not one of {sorted(SCORERS)}")
    spec.module.eval()
    with torch.set_grad_enabled(spec.autograd):
        torch.onnx.export(spec.module, spec.inputs, str(directory / "model.onnx"), input_names=spec.input_names,
                          output_names=spec.output_names, dynamic_axes=spec.dynamic_axes, opset_version=OPSET,
                          dynamo=False)
    np.savez(directory / "aux.npz", **spec.aux)
    meta: dict[str, Any] = {"name": model.name, "n_items": int(model.n_items), "opset": OPSET, "int8": False,
                            "scorer": spec.scorer, **spec.meta}
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    if int8:
        meta.update(_quantize(directory, model, sample))
        (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def _quantize(directory: Path, model: Any, sample: Sequence[UserContext] | None) -> dict[str, Any]:
    """INT8 dynamic quantisation, kept only when cosine and top-10 overlap clear the gate."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = directory / "model.int8.onnx"
    # per-channel weight scales: SASRec's attention projections lose too much with one scale per tensor
    # (row cosine 0.990 vs 0.996 per channel on ml-100k)
    quantize_dynamic(str(directory / "model.onnx"), str(target), weight_type=QuantType.QInt8, per_channel=True)
    fp32_scorer = OnnxScorer(directory, prefer_int8=False)
    int8_scorer = OnnxScorer(directory, prefer_int8=True, _force=target)
    # the gate is the worst of its request groups (random and coherent histories): quantisation error grows
    # on the peaked score rows that coherent histories give, which random ones rarely show
    groups = [list(sample)] if sample else [sample_contexts(model), coherent_contexts(model)]
    checks = [agreement(fp32_scorer.score_batch(group), int8_scorer.score_batch(group)) for group in groups]
    cos, overlap = min(c for c, _ in checks), min(o for _, o in checks)
    ok = bool(cos >= COSINE_GATE and overlap >= OVERLAP_GATE)
    if not ok:
        target.unlink()
        log.warning("%s: INT8 export rejected (cosine %.4f, top-10 overlap %.3f); serving fp32", directory, cos,
                    overlap)
    return {"int8": ok, "int8_cosine": round(cos, 6), "int8_top10_overlap": round(overlap, 4)}


def agreement(reference: np.ndarray, other: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Mean row cosine and mean top-k overlap of two (B, n) score matrices (NaN rows skipped)."""
    rows = np.isfinite(reference).all(1) & np.isfinite(other).all(1)
    a, b = reference[rows].astype(np.float64), other[rows].astype(np.float64)
    if not len(a):
        return 1.0, 1.0
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    top_a, top_b = np.argsort(-a, 1)[:, :k], np.argsort(-b, 1)[:, :k]
    overlap = [len(set(x) & set(y)) / k for x, y in zip(top_a.tolist(), top_b.tolist(), strict=False)]
    return float(cos.mean()), float(np.mean(overlap))


def sample_contexts(model: Any, n: int = 32, seed: int = 0) -> list[UserContext]:
    """Seeded random requests (histories of 5-30 items, an hour apart) for parity and the INT8 gate."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(n):
        length = int(rng.integers(5, 31))
        hist = rng.choice(model.n_items, size=min(length, model.n_items), replace=False)
        times = 1_000_000_000.0 + 3600.0 * np.arange(len(hist))
        # arrays are sequences at run time; UserContext (ml_core.interface) declares only Sequence
        out.append(UserContext(history=cast(Sequence[int], hist), times=cast(Sequence[float], times), user=u,
                               now=float(times[-1]) + 86400.0))
    return out


def coherent_contexts(model: Any, n: int = 16, seed: int = 0, first_user: int = 0) -> list[UserContext]:
    """Histories that look like a real member's: each starts from a random item and grows by the model's own
    top-scored unseen item (2-30 items). Real histories are coherent, so the model's score rows on them are
    peaked; no data is needed to build them."""
    rng = np.random.default_rng(seed + 1)
    # log-uniform 2-30 items: short histories are common in real logs and show quantisation error the most
    lengths = np.rint(np.exp(rng.uniform(np.log(2), np.log(30), size=n))).astype(int).clip(2, max(model.n_items - 1, 2))
    hists = [[int(i)] for i in rng.choice(model.n_items, size=n, replace=model.n_items < n)]

    def context(u: int, hist: list[int]) -> UserContext:
        times = 1_000_000_000.0 + 3600.0 * np.arange(len(hist))
        # arrays are sequences at run time; UserContext (ml_core.interface) declares only Sequence
        return UserContext(history=cast(Sequence[int], np.asarray(hist, dtype=np.int64)),
                           times=cast(Sequence[float], times), user=first_user + u, now=float(times[-1]) + 86400.0)

    for _ in range(int(lengths.max()) - 1):
        growing = [u for u in range(n) if len(hists[u]) < lengths[u]]
        if not growing:
            break
        scores = np.asarray(model.score_batch([context(u, hists[u]) for u in growing]), dtype=np.float64)
        for row, u in zip(scores, growing, strict=True):
            row = np.where(np.isfinite(row), row, -np.inf)
            row[hists[u]] = -np.inf
            if np.isfinite(row).any():
                hists[u].append(int(np.argmax(row)))
            else:  # nothing scored: continue at random, so the history still reaches its length
                hists[u].append(int(rng.choice(np.setdiff1d(np.arange(model.n_items), hists[u]))))
    return [context(u, hist) for u, hist in enumerate(hists)]


# -- serving -----------------------------------------------------------------------------------------
class OnnxScorer(UserStateScorer):
    """onnxruntime scorer with the model's score/score_batch contract (NaN for unknown items/empty histories)."""

    def __init__(self, directory: Path, *, prefer_int8: bool = True, threads: int | None = None,
                 _force: Path | None = None) -> None:
        import onnxruntime as ort

        directory = Path(directory)
        self.meta = json.loads((directory / "meta.json").read_text())
        self.name, self.n_items = self.meta["name"], int(self.meta["n_items"])
        path = _force or (directory / "model.int8.onnx" if prefer_int8 and self.meta.get("int8")
                          else directory / "model.onnx")
        self.precision = "int8" if path.name.endswith("int8.onnx") else "fp32"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = opts.inter_op_num_threads = threads
            if threads == 1:  # no pool threads spinning after each run, competing with the request's own work
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        with np.load(directory / "aux.npz", allow_pickle=False) as npz:
            self.aux = {k: npz[k] for k in npz.files}
        kind = self.meta.get("scorer") or _scorer_of_legacy_export(self.meta)
        self.features = None
        if kind == "item_features":
            from .models.kan_features import FeatureBuilder

            self.features = FeatureBuilder.restore(self.meta["features"],
                                                   {f"features.{k}": v for k, v in self.aux.items()})
        # rows: (contexts, known histories) -> (B, n_items) scores; vectors: -> (B, d) user states, when the
        # graph gives a user vector (dotted with the exported item embeddings) rather than a score row
        self._vectors: Any = {"user_vector": self._sasrec_users, "ode_chunks": self._ode_states}.get(kind)
        self._rows: Any = self._vector_rows if self._vectors is not None else {
            "multi_hot": self._multi_hot_rows, "user_points": self._point_rows, "item_features": self._feature_rows,
            "ode_graph": self._ode_graph_rows}[kind]

    def score(self, history: Sequence[int], candidates: np.ndarray, **context: Any) -> np.ndarray:
        return self.score_state(self.user_state(history, **context), candidates)

    def user_state(self, history: Sequence[int], **context: Any) -> np.ndarray | None:
        """What the model computes from the user alone, before any candidate: SASRec's user vector, the
        Neural-ODE state evolved to now, or the whole score row (diffusion, hyperbolic); None for a history
        the model does not know. The serving engine caches it per request inputs (ml_core/serving/cache.py)."""
        known = _known(history, self.n_items)
        if not len(known):
            return None
        ctx = [UserContext(history=history, **context)]
        state: np.ndarray = (self._vectors(ctx, [known]) if self._vectors is not None else self.score_batch(ctx))[0]
        return state

    def score_state(self, state: np.ndarray | None, candidates: np.ndarray) -> np.ndarray:
        """Scores of ``candidates`` from a ``user_state`` (NaN for unknown items, or everywhere for None)."""
        cand = np.asarray(candidates, np.int64).reshape(-1)
        out = np.full(len(cand), np.nan, np.float32)
        ok = (cand >= 0) & (cand < self.n_items)
        if state is None or not ok.any():
            return out
        if self._vectors is not None:  # a user vector, dotted with the candidates' embeddings only
            out[ok] = self.aux["item_emb"][cand[ok]] @ state
        else:  # a score row
            out[ok] = state[cand[ok]]
        return out

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        out = np.full((len(contexts), self.n_items), np.nan, np.float32)
        clean = [_known(c.history, self.n_items) for c in contexts]
        rows = [i for i, h in enumerate(clean) if len(h)]
        if rows:
            out[rows] = self._run([contexts[i] for i in rows], [clean[i] for i in rows])
        return out

    def _run(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        scores: np.ndarray = self._rows(contexts, histories)
        return scores

    def _vector_rows(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self._vectors(contexts, histories) @ self.aux["item_emb"].T, np.float32)

    def _multi_hot_rows(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        x = np.zeros((len(histories), self.n_items), np.float32)
        for r, h in enumerate(histories):
            x[r, h] = 1.0
        return np.asarray(self.session.run(None, {"history": x})[0])

    def _point_rows(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(None, {"user_points": self._user_points(contexts, histories)})[0])

    def _feature_rows(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        assert self.features is not None  # restored in __init__ for item_features graphs
        feats = self.features.features(contexts)
        flat = self.session.run(None, {"features": feats.reshape(-1, feats.shape[-1])})[0]
        return np.asarray(flat.reshape(feats.shape[:2]))

    def _ode_graph_rows(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        items, taus, now = self._ode_inputs(contexts)
        return np.asarray(self.session.run(None, {"items": items, "taus": taus, "tau_now": now})[0])

    def _sasrec_users(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        return np.stack([self._sasrec_user(h) for h in histories])

    def _ode_states(self, contexts: list[UserContext], histories: list[np.ndarray] | None = None) -> np.ndarray:
        """(B, 2d) states evolved to now, running only the chunks that hold events (known histories only)."""
        items, taus, now = self._ode_inputs(contexts)
        chunk, pad = int(self.meta["chunk"]), self.n_items
        used = int((items != pad).sum(1).max())
        width = -(-max(used, 1) // chunk) * chunk  # every column left of this is padding in every row
        extra = max(width - items.shape[1], 0)  # max_len not a multiple of the chunk: more padding on the left
        items = np.pad(items, ((0, 0), (extra, 0)), constant_values=pad)[:, -width:]
        taus = np.pad(taus, ((0, 0), (extra, 0)))[:, -width:]
        state = np.repeat(self.aux["h0"][None], len(contexts), axis=0).astype(np.float32)
        evolved: np.ndarray
        for start in range(0, width, chunk):
            state, evolved = self.session.run(None, {"state": state, "items": items[:, start : start + chunk],
                                                     "taus": taus[:, start : start + chunk], "tau_out": now})
        return evolved

    def _sasrec_user(self, history: np.ndarray) -> np.ndarray:
        """(d,) SASRec user vector of one known history (exported with a batch of one)."""
        length = int(self.meta["max_len"])
        ids = np.zeros((1, length), np.int64)
        h = history[-length:]
        ids[0, length - len(h):] = h + 1  # 0 = padding, item i is id i + 1
        vector: np.ndarray = self.session.run(None, {"items": ids})[0][0]
        return vector

    def _user_points(self, contexts: list[UserContext], histories: list[np.ndarray]) -> np.ndarray:
        c = float(self.meta["curvature"])
        users, items = self.aux["user_points"], self.aux["item_points"]
        out = []
        for ctx, h in zip(contexts, histories, strict=False):
            if ctx.user is not None and 0 <= int(ctx.user) < len(users):
                out.append(users[int(ctx.user)])
            else:
                out.append(_expmap0(_logmap0(items[h], c).mean(0), c))
        return np.stack(out).astype(np.float32)

    def _ode_inputs(self, contexts: list[UserContext]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        length, unit, n = int(self.meta["max_len"]), float(self.meta["time_unit_s"]), self.n_items
        items = np.full((len(contexts), length), n, np.int64)
        taus = np.zeros((len(contexts), length), np.float32)
        now = np.zeros((len(contexts), 1), np.float32)

        def warp(gap: Any) -> Any:  # NeuralODE.warp: seconds -> log(1 + gap / unit), array or scalar
            return np.log1p(np.maximum(gap, 0.0) / unit)

        for r, ctx in enumerate(contexts):
            h = np.asarray(ctx.history, np.int64).reshape(-1)
            ok = (h >= 0) & (h < n)
            t = (np.asarray(ctx.times, np.float64).reshape(-1)[ok]
                 if ctx.times is not None and len(ctx.times) == len(h) else None)
            s = h[ok][-length:]
            items[r, -len(s):] = s
            if t is not None:
                t = t[-length:]
                if len(s) > 1:
                    taus[r, -len(s) + 1:] = warp(np.diff(t))
                if ctx.now is not None:
                    now[r, 0] = warp(float(ctx.now) - float(t[-1]))
        return items, taus, now


def load_scorer(directory: Path, *, prefer_int8: bool = True, threads: int | None = 1) -> OnnxScorer:
    """The Tier 2 scorer of one exported model (INT8 when it passed the gate); one thread per serving
    process by default (requests are small; on shared cores a thread pool only contends)."""
    return OnnxScorer(directory, prefer_int8=prefer_int8, threads=threads)


def _scorer_of_legacy_export(meta: dict[str, Any]) -> str:
    """The scorer kind of an export written before meta.json recorded it (by its model; chunked ODE graphs)."""
    if meta["name"] == "neural_ode" and "chunk" in meta:
        return "ode_chunks"
    return _LEGACY_SCORERS[meta["name"]]


def _known(history: Sequence[int], n_items: int) -> np.ndarray:
    h = np.asarray(history, np.int64).reshape(-1)
    return h[(h >= 0) & (h < n_items)]


def _logmap0(x: np.ndarray, c: float) -> np.ndarray:
    sc = c**0.5
    norm = np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-15)
    tangent: np.ndarray = np.arctanh(np.clip(sc * norm, -1 + 1e-7, 1 - 1e-7)) * x / (sc * norm)
    return tangent


def _expmap0(v: np.ndarray, c: float) -> np.ndarray:
    sc = c**0.5
    norm = np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-15)
    x = np.tanh(sc * norm) * v / (sc * norm)
    max_norm = (1 - 4e-3) / sc
    xn = np.linalg.norm(x, axis=-1, keepdims=True)
    point: np.ndarray = np.where(xn > max_norm, x / np.maximum(xn, 1e-15) * max_norm, x)
    return point
