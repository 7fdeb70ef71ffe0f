"""Per-process cache of the models' user-side states, keyed by everything a request tells the models.

Most of a Tier 2 request's model time is spent on the user, not on the candidates: SASRec's transformer
over the history, the Neural-ODE state integrated event by event, the diffusion model's denoised score row.
Those depend only on the request's user inputs (history, event times, ``now``, training user index), so a
scorer that splits its work (``user_state`` then ``score_state``, see onnx_export.OnnxScorer) has its state
kept here and reused while the inputs are byte-for-byte the same: a user's next request, until they rate
something. Scorers whose weights change while serving (the online ranker) do not split, and are always run.

The cache belongs to one loaded bundle (a reload starts an empty one), is bounded in bytes and LRU, and is
thread-safe. It never changes a score: a hit returns the array the same inputs produced.

Ranked pools are also shared between the processes of one machine (or a fleet) through a :class:`PoolStore`
that the host application hands the engine (``Engine.share_pools``; the site gives it its Redis cache). A pool
is computed once per history change by whichever worker (or the online learner's push) meets it first; the
other workers read it instead of running every model again. The shared key is the local one (which digests
every input and the bundle's state) under the bundle version and tier, and a pool travels as a small binary
record (:func:`pack_pool`): arrays as raw bytes behind a JSON header, nothing that unpickles.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..retrieval import Candidates

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024


def request_key(history: np.ndarray, ctx: dict[str, Any]) -> bytes:
    """A digest of the model inputs of one request: item indices, times, now and user index."""
    h = hashlib.blake2b(np.ascontiguousarray(history, np.int64).tobytes(), digest_size=16)
    times = ctx.get("times")
    h.update(b"|t" + (np.ascontiguousarray(times, np.float64).tobytes() if times is not None else b"-"))
    h.update(f"|n{ctx.get('now')!r}|u{ctx.get('user')!r}".encode())
    return h.digest()


class UserStateCache:
    """LRU of {model name: state} per request key, at most ``budget_bytes`` of arrays in all."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[bytes, tuple[dict[str, Any], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> dict[str, Any]:
        """The states stored for ``key`` (a copy to add to), or an empty dict."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return {}
            self._entries.move_to_end(key)
            self.hits += 1
            return dict(entry[0])

    def put(self, key: bytes, states: dict[str, Any], size: int | None = None) -> None:
        """Store ``states`` under ``key``; ``size``: their bytes when the values are not arrays."""
        size = (size if size is not None else sum(getattr(s, "nbytes", 0) for s in states.values())) + 256
        if size > self.budget_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (states, size)
            self._bytes += size
            while self._bytes > self.budget_bytes:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits, "misses": self.misses}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = self.hits = self.misses = 0


@runtime_checkable
class PoolStore(Protocol):
    """Bytes under string keys, shared by the serving processes (a Redis cache); misses and failures are None."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...


_LEN = struct.Struct("<I")


@dataclass
class PoolBase:
    """What a ranked pool takes from retrieval and the models, before the bundle's live state is applied: the
    candidates, every model's raw scores and the content signals. The blend weights, the served counts and
    the online ranker's weights are applied on top (pipeline._finish_pool), so a new online state recomputes
    only the ranker's row, and workers share this part (:class:`PoolStore`)."""

    cands: Candidates
    raw: np.ndarray | None  # (models, candidates) raw scores; None: not scored by the models (lite, Tier 3)
    lite: np.ndarray | None  # (2, candidates): embedding cosine and content similarity, the content relevance
    ranker_digest: bytes = b""  # the online ranker weights ``raw``'s ranker row was scored with

    @property
    def nbytes(self) -> int:
        return int(self.cands.items.nbytes + sum(a.nbytes for a in (self.raw, self.lite) if a is not None)
                   + 64 * len(self.cands.items))  # + the per-candidate source lists


def pack_pool(base: PoolBase) -> bytes:
    """A :class:`PoolBase` as bytes: a JSON header, then the arrays' raw bytes (see :func:`unpack_pool`)."""
    cands = base.cands
    arrays: list[tuple[str, np.ndarray]] = [("items", cands.items)]
    arrays += [(f"list:{name}", items) for name, items in cands.lists.items()]
    arrays += [(name, value) for name, value in (("raw", base.raw), ("lite", base.lite)) if value is not None]
    body, fields, offset = [], [], 0
    for name, value in arrays:
        raw = np.ascontiguousarray(value).tobytes()
        fields.append([name, value.dtype.str, list(value.shape), offset, len(raw)])
        body.append(raw)
        offset += len(raw)
    header = json.dumps({"arrays": fields, "extra": {str(k): v for k, v in cands.extra.items()},
                         "ranker": base.ranker_digest.hex()}).encode()
    return _LEN.pack(len(header)) + header + b"".join(body)


def _array(data: bytes, offset: int, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(shape, dtype)
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape).copy()


def unpack_pool(data: bytes) -> PoolBase:
    """The :class:`PoolBase` :func:`pack_pool` wrote; ValueError on anything else."""
    try:
        (size,) = _LEN.unpack_from(data)
        header = json.loads(data[_LEN.size:_LEN.size + size])
        base = _LEN.size + size
        arrays = {name: _array(data, base + offset, np.dtype(dtype), shape)
                  for name, dtype, shape, offset, _ in header["arrays"]}
        cands = Candidates(items=arrays.pop("items"),
                           lists={name[5:]: arrays.pop(name) for name in list(arrays) if name.startswith("list:")},
                           extra={int(k): list(v) for k, v in header["extra"].items()})
        return PoolBase(cands=cands, raw=arrays.get("raw"), lite=arrays.get("lite"),
                        ranker_digest=bytes.fromhex(header["ranker"]))
    except (struct.error, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a packed ranked pool: {exc}") from exc
