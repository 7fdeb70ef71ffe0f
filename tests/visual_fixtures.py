"""A tiny randomly initialised CLIP (the real architecture, small widths) and generated poster images.

Used by the visual-similarity tests in ml_core, recommendations and the browser journey: everything is built
on the spot, offline, in well under a second.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np

# Four distinct looks; each has a near-identical twin (a few pixels changed), so twins must be nearest neighbours.
LOOKS = ("stripes", "checks", "gradient", "disc")
COLOURS = {"stripes": (200, 30, 30), "checks": (30, 160, 40), "gradient": (20, 60, 210), "disc": (230, 200, 20)}


def make_tiny_clip(directory: Path, *, seed: int = 0) -> Path:
    """Save a CLIPModel with tiny vision/text towers, its PIL image processor and a small BPE tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    config = CLIPConfig(
        text_config={"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in [*letters, *(c + "</w>" for c in letters)]:
        vocab[token] = len(vocab)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(directory)
    return directory


def poster_image(look: str, *, variant: int = 0, size: tuple[int, int] = (68, 102)) -> object:
    """A 2:3 poster with a distinct pattern and colour; ``variant`` > 0 changes a few pixels (a near twin)."""
    from PIL import Image

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    if look == "stripes":
        mask = (x // 8) % 2 == 0
    elif look == "checks":
        mask = ((x // 12) + (y // 12)) % 2 == 0
    elif look == "gradient":
        mask = (x + y) < (w + h) * 0.5
    else:
        mask = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (w / 3) ** 2
    pixels = np.where(mask[..., None], np.array(COLOURS[look], np.uint8), np.array([15, 15, 25], np.uint8))
    pixels = pixels.astype(np.uint8)
    if variant:
        rng = np.random.default_rng(variant)
        spots = rng.integers(0, [h, w], size=(6, 2))
        pixels[spots[:, 0], spots[:, 1]] = 255
    return Image.fromarray(pixels)


def poster_jpeg(look: str, *, variant: int = 0) -> bytes:
    """The poster as JPEG bytes, as TMDB's image CDN serves it."""
    buffer = io.BytesIO()
    poster_image(look, variant=variant).save(buffer, format="JPEG", quality=95)  # type: ignore[attr-defined]
    return buffer.getvalue()


def twin_posters() -> dict[str, bytes]:
    """Eight posters keyed by TMDB-style poster path: each look and its near twin."""
    return {f"/{look}{variant}.jpg": poster_jpeg(look, variant=variant) for look in LOOKS for variant in (0, 1)}


class FakeCdn:
    """TMDB's image CDN for the generated posters (404 for any other path), recording each request."""

    def __init__(self) -> None:
        self.posters = twin_posters()
        self.requests: list[str] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        name = request.url.path.removeprefix("/t/p/w342")
        if request.url.host == "image.tmdb.org" and name in self.posters:
            return httpx.Response(200, content=self.posters[name], headers={"Content-Type": "image/jpeg"})
        return httpx.Response(404)
