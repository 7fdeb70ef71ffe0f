"""The serving bundle on disk: models, retrieval indexes, ONNX exports, ensemble weights, one checksummed manifest.

Layout under ``<ML_ARTIFACTS_DIR>/serving``::

    manifest.json        version, model names, tier support, SHA-256 of every file below
    items.json           serving item space: movie ids (training vocabulary first) and metadata
    popularity.npy       interaction counts per serving item
    ensemble.json        models, weights + version, DR estimate, gating threshold, temperature, metrics
    models/<name>/       each model's own export (its own manifest)
    onnx/<name>/         INT8 ONNX export of the model's scoring path (Tier 2), when available
    rating/              explicit-rating predictor (ml_core.rating; its own manifest with RMSE/MAE), when built
    retrieval/           faiss.index, vectors.npy, tfidf.npz, tfidf_neighbours.npz, kg_*.{json,npz}
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import ArtifactError, sha256_file
from .interface import EmbeddingModel, OnlineRanker

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
EMBEDDING_PREFERENCE = ("lightgcn", "sasrec", "hyperbolic", "diffusion", "neural_ode", "kan", "ease", "itemknn")
META_FIELDS = ("title", "year", "genres", "director", "directors", "collection", "vote_average", "vote_count",
               "popularity", "poster_path", "rating_mean", "rating_count", "overview", "keywords", "tags")


def serving_items(item_raw_ids: list[int], metadata: dict[int, dict[str, Any]]) -> list[int]:
    """Training vocabulary first (model indices stay valid), then catalogue-only movies in id order."""
    known = set(item_raw_ids)
    return list(item_raw_ids) + sorted(int(m) for m in metadata if int(m) not in known)


def svd_item_vectors(matrix: Any, dims: int = 64) -> np.ndarray:
    """Item factors of a truncated SVD of the user x item matrix (scaled by the singular values)."""
    from scipy.sparse.linalg import svds

    k = max(1, min(dims, min(matrix.shape) - 1))
    _, s, vt = svds(matrix.astype(np.float64), k=k, random_state=0)
    vectors: np.ndarray = (vt.T * np.sqrt(s)[None]).astype(np.float32)
    return vectors


def item_embeddings(models: dict[str, Any], n_items: int, matrix: Any = None) -> tuple[str, np.ndarray]:
    """The preferred model's item vectors (else SVD of ``matrix``) padded with zeros to the serving item space."""
    for name in EMBEDDING_PREFERENCE:
        model = models.get(name)
        vecs = model.item_embeddings() if isinstance(model, EmbeddingModel) else None
        if vecs is not None and np.ndim(vecs) == 2:
            vecs = np.asarray(vecs, np.float32)
            out = np.zeros((n_items, vecs.shape[1]), np.float32)
            out[: len(vecs)] = vecs[:n_items]
            return name, out
    if matrix is None:
        raise ArtifactError("no model in the bundle exposes item embeddings for the FAISS index")
    vecs = svd_item_vectors(matrix)
    out = np.zeros((n_items, vecs.shape[1]), np.float32)
    out[: len(vecs)] = vecs
    return "svd", out


def build_bundle(out: Path, *, item_raw_ids: list[int], interactions_items: np.ndarray,
                 metadata: dict[int, dict[str, Any]], models: dict[str, Any], ensemble: dict[str, Any],
                 data_snapshot: dict[str, Any], onnx: bool = True, matrix: Any = None,
                 model_dirs: dict[str, Path] | None = None, rating: Any = None,
                 rating_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the whole bundle (models already fitted) and its manifest; returns the manifest."""
    from .retrieval import ContentIndex, EmbeddingIndex, KnowledgeGraph

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    movie_ids = serving_items(item_raw_ids, metadata)
    n = len(movie_ids)
    meta = [{k: v for k, v in (metadata.get(m) or {}).items() if k in META_FIELDS} for m in movie_ids]
    popularity = np.bincount(np.asarray(interactions_items, np.int64), minlength=n).astype(np.float64)[:n]
    (out / "items.json").write_text(json.dumps({"movie_ids": movie_ids, "metadata": meta}))
    np.save(out / "popularity.npy", popularity, allow_pickle=False)
    for name, model in models.items():
        trained = (model_dirs or {}).get(name)
        if trained is not None and (Path(trained) / "manifest.json").exists():
            # a copy, not hard links: a later `train` rewrites its files in place
            shutil.copytree(Path(trained), out / "models" / name)
        else:
            model.export(out / "models" / name)
    if rating is not None:
        rating.export(out / "rating", data_snapshot=data_snapshot, metrics=rating_metrics)
    source, vectors = item_embeddings(models, n, matrix)
    start = time.perf_counter()
    EmbeddingIndex.build(vectors).save(out / "retrieval")
    ContentIndex.build(meta).save(out / "retrieval")
    KnowledgeGraph.build(meta, popularity).save(out / "retrieval")
    log.info("retrieval indexes built in %.1f s (embeddings from %s)", time.perf_counter() - start, source)
    onnx_models = export_onnx(models, out / "onnx") if onnx else []
    ensemble = {**ensemble, "embedding_source": source, "onnx_models": onnx_models}
    (out / "ensemble.json").write_text(json.dumps(ensemble, indent=2, sort_keys=True))
    return write_bundle_manifest(out, models=sorted(models), data_snapshot=data_snapshot)


def export_onnx(models: dict[str, Any], directory: Path) -> list[str]:
    """INT8 ONNX exports of the neural models' scoring paths via ml_core.onnx_export; names exported."""
    try:
        from . import onnx_export
    except ImportError:
        log.warning("ml_core.onnx_export is not available; Tier 2 will fall back to torch for every model")
        return []
    done = []
    for name, model in models.items():
        # an OnlineRanker takes the online learner's weights while serving, so it is always served by torch
        if isinstance(model, OnlineRanker) or not onnx_export.supports(model):
            continue
        try:
            onnx_export.export_model(model, directory / name, int8=True)
            done.append(name)
        except Exception:  # noqa: BLE001 - one failed export must not sink the bundle; Tier 2 uses torch for it
            log.exception("ONNX export of %s failed; Tier 2 serves it with torch", name)
    return done


def write_bundle_manifest(out: Path, *, models: list[str], data_snapshot: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
    """manifest.json with the SHA-256 of every file in the bundle (recursively)."""
    files = {str(p.relative_to(out)): sha256_file(p) for p in sorted(out.rglob("*"))
             if p.is_file() and p.relative_to(out).as_posix() != MANIFEST}
    manifest = {"format_version": 1, "kind": "serving-bundle", "models": models, "files": files,
                "version": time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f".{time.time_ns() % 1_000_000:06d}",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data_snapshot": data_snapshot}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(out: Path) -> dict[str, Any]:
    """The bundle manifest; ArtifactError naming the file when missing or unreadable."""
    path = Path(out) / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{path}: no serving bundle here (run `manage.py build_serving_artifacts`)")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: unreadable manifest ({exc})") from exc
    return manifest


def verify_bundle(out: Path) -> dict[str, Any]:
    """Check every file's SHA-256 against the manifest: {'ok', 'version', 'checked', 'mismatches': [...]}."""
    manifest = read_manifest(out)
    mismatches = []
    for rel, expected in manifest.get("files", {}).items():
        path = Path(out) / rel
        if not path.exists():
            mismatches.append({"file": rel, "problem": "missing"})
        elif sha256_file(path) != expected:
            mismatches.append({"file": rel, "problem": "sha256 mismatch"})
    return {"ok": not mismatches, "version": manifest.get("version"), "checked": len(manifest.get("files", {})),
            "mismatches": mismatches}
