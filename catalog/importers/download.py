"""Download an official MovieLens zip from files.grouplens.org (only when the machine is online)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
from tqdm import tqdm

from .errors import ImportFileError

logger = logging.getLogger(__name__)
BASE_URL = "https://files.grouplens.org/datasets/movielens"
RELEASES = {name: f"{BASE_URL}/{name}.zip" for name in
            ("ml-100k", "ml-latest-small", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest")}


def download_release(name: str, target: Path, *, client: httpx.Client | None = None) -> Path:
    """Stream the release zip into `target`; a clear ImportFileError when offline or on HTTP errors."""
    url = RELEASES[name]
    destination = target / f"{name}.zip"
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True)
    try:
        with http.stream("GET", url) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with destination.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=name,
                                                     file=sys.stderr) as bar:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except httpx.HTTPStatusError as exc:
        raise ImportFileError(url, None, f"download failed: HTTP {exc.response.status_code}") from exc
    except httpx.TransportError as exc:
        raise ImportFileError(url, None, f"download failed, is this machine online? ({exc.__class__.__name__}: "
                                         f"{exc}). Download the zip elsewhere and pass its path instead.") from exc
    finally:
        if client is None:
            http.close()
    logger.info("downloaded %s to %s", url, destination)
    return destination
