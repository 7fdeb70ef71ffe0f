"""Visual similarity: CLIP poster embeddings in a FAISS index, and text-to-poster search through CLIP's text tower.

The encoder is transformers' CLIP (``CLIPModel``, its PIL image processor ``CLIPImageProcessorPil`` and the
model's tokenizer). open_clip is not used: it depends on torchvision, which this project's locked environment
lacks and cannot add next to its pinned CPU torch; the PIL processor needs no torchvision. Weights come from a
local directory, or from the Hugging Face hub only when the operator's build command allows it
(``ClipEncoder.load(..., offline=False)``); serving never downloads.

A visual index folder (checksummed by :mod:`ml_core.artifacts`' manifest)::

    manifest.json   model "clip-visual", SHA-256 of every file, metrics (source model, posters, dims, timings)
    movie_ids.json  the movie id of each index row
    faiss.index, vectors.npy   an EmbeddingIndex over the L2-normalised image embeddings
    text/           CLIP's text tower (with its projection) and tokenizer, with its own manifest: text queries
                    load only this, never the image tower
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import ArtifactError, verify_artifact, write_manifest
from .faiss_index import EmbeddingIndex

log = logging.getLogger(__name__)

KIND = "clip-visual"
TEXT_KIND = "clip-text"
BATCH_SIZE = 32  # posters per forward pass: bounded memory on CPU, big enough to amortise the call


def _normalised(x: Any) -> np.ndarray:
    vecs = np.asarray(x.detach().cpu().numpy(), np.float32)
    out: np.ndarray = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return out


def _text_inputs(tokenizer: Any, texts: Sequence[str], max_length: int) -> Any:
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


class ClipEncoder:
    """CLIP's image and text towers, with the preprocessing that belongs to the weights."""

    def __init__(self, model: Any, processor: Any, tokenizer: Any, source: str) -> None:
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = tokenizer
        self.source = source  # hub id or local path the weights came from (recorded in the manifest)

    @classmethod
    def load(cls, source: str | Path, *, offline: bool = True) -> ClipEncoder:
        """CLIP from a saved directory or a hub id; ``offline`` (the default) forbids any download."""
        from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

        name = str(source)
        try:
            model = CLIPModel.from_pretrained(name, local_files_only=offline)
            processor = CLIPImageProcessorPil.from_pretrained(name, local_files_only=offline)
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline)
        except (OSError, ValueError) as exc:
            hint = " (offline: pass a local directory, or allow the download)" if offline else ""
            raise ArtifactError(f"cannot load CLIP from {name!r}{hint}: {exc}") from exc
        return cls(model, processor, tokenizer, name)

    @property
    def dims(self) -> int:
        return int(self.model.config.projection_dim)

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        """(n, dims) L2-normalised image embeddings of PIL images (any size or mode)."""
        import torch

        if not images:
            return np.zeros((0, self.dims), np.float32)
        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels)
        return _normalised(out.pooler_output)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dims) L2-normalised text embeddings, in the same space as the images."""
        import torch

        inputs = _text_inputs(self.tokenizer, texts, self.model.config.text_config.max_position_embeddings)
        with torch.inference_mode():
            out = self.model.get_text_features(**inputs)
        return _normalised(out.pooler_output)

    def save_text_tower(self, directory: Path) -> None:
        """The text tower with its projection, and the tokenizer, as a checksummed folder (no image tower)."""
        from transformers import CLIPTextModelWithProjection

        text_config = self.model.config.text_config
        text_config.projection_dim = self.model.config.projection_dim  # CLIPModel projects to the joint width
        tower = CLIPTextModelWithProjection(text_config)
        tower.text_model.load_state_dict(self.model.text_model.state_dict())
        tower.text_projection.load_state_dict(self.model.text_projection.state_dict())
        directory.mkdir(parents=True, exist_ok=True)
        tower.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_manifest(directory, model=TEXT_KIND)


class TextTower:
    """The saved text tower of a visual index: query text -> a vector in the poster space."""

    def __init__(self, directory: Path) -> None:
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        verify_artifact(directory)
        model: Any = CLIPTextModelWithProjection.from_pretrained(str(directory), local_files_only=True)
        self.model = model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        inputs = _text_inputs(self.tokenizer, texts, self.model.config.max_position_embeddings)
        with torch.inference_mode():
            return _normalised(self.model(**inputs).text_embeds)


@dataclass
class VisualIndex:
    """A loaded visual index: movie ids, their poster vectors in FAISS, and (loaded on first use) the text tower."""

    directory: Path
    movie_ids: np.ndarray  # int64 (n,): the movie id of each row
    index: EmbeddingIndex
    manifest: dict[str, Any]
    _rows: dict[int, int] = field(default_factory=dict, repr=False)
    _text: TextTower | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rows = {int(m): i for i, m in enumerate(self.movie_ids.tolist())}

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    @property
    def model_name(self) -> str:
        return str((self.manifest.get("metrics") or {}).get("model", ""))

    def __contains__(self, movie_id: object) -> bool:
        return movie_id in self._rows

    def __len__(self) -> int:
        return len(self.movie_ids)

    def similar(self, movie_id: int, k: int) -> list[tuple[int, float]]:
        """The k movies whose posters look most like this one's (cosine); KeyError when it has no poster here."""
        rows, scores = self.index.similar(self._rows[int(movie_id)], k)
        return self._hits(rows, scores)

    def search_text(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k posters that best match a description, through CLIP's text tower."""
        with self._lock:  # the tower loads once per index, on the first text query
            if self._text is None:
                self._text = TextTower(self.directory / "text")
        rows, scores = self.index.search(self._text.encode([query])[0], k)
        return self._hits(rows, scores)

    def _hits(self, rows: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
        return [(int(self.movie_ids[r]), float(s)) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
                if r >= 0]

    @classmethod
    def load(cls, directory: Path) -> VisualIndex:
        """Verify every checksum, then load; ArtifactError naming the file when anything is missing or altered."""
        directory = Path(directory)
        manifest = verify_artifact(directory)
        if manifest.get("model") != KIND:
            raise ArtifactError(f"{directory}: holds {manifest.get('model')!r}, not a visual index")
        movie_ids = np.asarray(json.loads((directory / "movie_ids.json").read_text())["movie_ids"], np.int64)
        return cls(directory, movie_ids, EmbeddingIndex.load(directory), manifest)


def load_posters(posters: Sequence[tuple[int, Path]]) -> tuple[list[int], list[Any], list[int]]:
    """Open poster files with PIL: (movie ids, images, ids whose file would not decode)."""
    from PIL import Image, UnidentifiedImageError

    ids, images, bad = [], [], []
    for movie_id, path in posters:
        try:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
            ids.append(int(movie_id))
        except (OSError, UnidentifiedImageError) as exc:
            log.warning("poster of movie %s (%s) does not decode: %s", movie_id, path, exc)
            bad.append(int(movie_id))
    return ids, images, bad


def build_visual_index(out: Path, *, encoder: ClipEncoder, posters: Sequence[tuple[int, Path]],
                       batch_size: int = BATCH_SIZE, data_snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    """Embed the posters (movie id, image file), index them, and replace ``out`` atomically; the manifest."""
    out = Path(out)
    start = time.perf_counter()
    ids: list[int] = []
    chunks: list[np.ndarray] = []
    undecodable: list[int] = []
    for offset in range(0, len(posters), batch_size):
        batch_ids, images, bad = load_posters(posters[offset: offset + batch_size])
        ids += batch_ids
        undecodable += bad
        chunks.append(encoder.encode_images(images))
    if not ids:
        raise ArtifactError("no poster could be read; nothing to index (fetch posters first)")
    vectors = np.concatenate(chunks)
    embed_s = time.perf_counter() - start
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    EmbeddingIndex.build(vectors).save(staging)
    (staging / "movie_ids.json").write_text(json.dumps({"movie_ids": ids}))
    encoder.save_text_tower(staging / "text")
    metrics = {"model": encoder.source, "posters": len(ids), "undecodable": len(undecodable), "dims": encoder.dims,
               "embed_seconds": round(embed_s, 3), "build_seconds": round(time.perf_counter() - start, 3)}
    manifest = write_manifest(staging, model=KIND, data_snapshot=data_snapshot, metrics=metrics)
    _replace_dir(staging, out)
    log.info("visual index: %d posters x %d dims from %s in %.1f s", len(ids), encoder.dims, encoder.source,
             metrics["build_seconds"])
    return manifest


def _replace_dir(new: Path, out: Path) -> None:
    """Swap ``new`` in at ``out`` with two renames, so readers see the old index or the new one, never half."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)
