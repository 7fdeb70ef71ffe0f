"""Model artifacts on disk: config.json, weights.safetensors, vocab.json, metrics.json, manifest.json.

The manifest records the SHA-256 of every other file, the data snapshot and the
metrics. Loading verifies every checksum first and reads weights with safetensors
(or ``np.load(allow_pickle=False)`` for .npz), so nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """An artifact that is missing, incomplete or fails its checksum; the message names the file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_artifact(directory: Path, *, model: str, config: dict[str, Any], tensors: dict[str, np.ndarray],
                  vocab: dict[str, Any], data_snapshot: dict[str, Any] | None = None,
                  state: dict[str, Any] | None = None) -> None:
    """Write a model's files and a manifest with their checksums."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / "weights.safetensors"))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    if state is not None:
        (directory / "state.json").write_text(json.dumps(state))
    write_manifest(directory, model=model, data_snapshot=data_snapshot)


def write_manifest(directory: Path, *, model: str | None = None, data_snapshot: dict[str, Any] | None = None,
                   metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """(Re)write manifest.json over every file in the folder, keeping fields not given."""
    directory = Path(directory)
    old = json.loads((directory / MANIFEST).read_text()) if (directory / MANIFEST).exists() else {}
    if metrics is not None:
        (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model or old.get("model"),
        "version": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "files": files,
        "data_snapshot": data_snapshot if data_snapshot is not None else old.get("data_snapshot"),
        "metrics": metrics if metrics is not None else old.get("metrics"),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def verify_artifact(directory: Path) -> dict[str, Any]:
    """The manifest, after checking every listed file's SHA-256; raises ArtifactError otherwise."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{path}: manifest missing; not an APEX artifact folder")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from exc
    for name, expected in manifest.get("files", {}).items():
        file = directory / name
        if not file.exists():
            raise ArtifactError(f"{file}: listed in the manifest but missing")
        actual = sha256_file(file)
        if actual != expected:
            raise ArtifactError(f"{file}: checksum mismatch (manifest {expected[:12]}…, file {actual[:12]}…); "
                                "the artifact was modified or corrupted, retrain or restore it")
    return manifest


def load_artifact(directory: Path, *, model: str | None = None) -> dict[str, Any]:
    """Verified contents: {'manifest', 'config', 'tensors', 'vocab', 'state'}; never unpickles."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    manifest = verify_artifact(directory)
    if model is not None and manifest.get("model") != model:
        raise ArtifactError(f"{directory}: holds model {manifest.get('model')!r}, expected {model!r}")
    if (directory / "weights.safetensors").exists():
        tensors = dict(load_file(str(directory / "weights.safetensors")))
    elif (directory / "weights.npz").exists():
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            tensors = {k: npz[k] for k in npz.files}
    else:
        raise ArtifactError(f"{directory}: no weights.safetensors or weights.npz")
    state_path = directory / "state.json"
    return {
        "manifest": manifest,
        "config": json.loads((directory / "config.json").read_text()),
        "tensors": tensors,
        "vocab": json.loads((directory / "vocab.json").read_text()),
        "state": json.loads(state_path.read_text()) if state_path.exists() else {},
    }
