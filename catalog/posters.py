"""Poster images: the TMDB URL when there is a poster path, else a generated SVG placeholder with title and year;
and the poster files themselves, fetched from TMDB's image CDN into a disk cache for the visual index."""

from __future__ import annotations

import logging
import re
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from django.utils.html import escape

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 342, 513


def placeholder_svg(*, title: str, year: int | None, seed: int) -> str:
    """A 2:3 SVG poster with the title (wrapped) and year on a gradient picked from the movie id."""
    hue = (seed * 47) % 360
    lines = textwrap.wrap(title, width=16)[:5] or [""]
    first_y = HEIGHT / 2 - (len(lines) - 1) * 18
    text = "".join(f'<tspan x="50%" y="{first_y + i * 36:.0f}">{escape(line)}</tspan>' for i, line in enumerate(lines))
    font = 'text-anchor="middle" font-family="Georgia,serif"'
    year_text = (f'<text x="50%" y="{first_y + len(lines) * 36 + 10:.0f}" {font} font-size="22" fill="#f5c518">'
                 f"{year}</text>") if year else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},45%,28%)"/><stop offset="1" stop-color="hsl({hue},50%,10%)"/>'
        f'</linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>'
        f'<text {font} font-size="28" fill="#fff">{text}</text>{year_text}</svg>'
    )


def placeholder_data_uri(*, title: str, year: int | None, seed: int) -> str:
    """The placeholder as a data: URI for <img src> and onerror fallbacks."""
    return "data:image/svg+xml;charset=utf-8," + quote(placeholder_svg(title=title, year=year, seed=seed))


# ---- poster files from TMDB's image CDN (the visual index's input; docs/VISUAL.md) -------------------------------
POSTER_PATH = re.compile(r"^/[A-Za-z0-9_-]{1,100}\.(jpe?g|png|webp)$")  # TMDB's form; anything else is refused


class PosterFetchError(Exception):
    """The CDN kept failing (5xx/429/unreachable) after the retries."""


@dataclass
class PosterFetchReport:
    """What one cache fill did; ``posters`` lists (movie id, file) for every poster now on disk."""

    posters: list[tuple[int, Path]] = field(default_factory=list)
    fetched: int = 0
    cached: int = 0
    missing: list[int] = field(default_factory=list)  # the CDN answered 404
    invalid: list[int] = field(default_factory=list)  # a poster path not of TMDB's form
    failed: list[int] = field(default_factory=list)  # gave up after retries, or not an image


def poster_cache_file(cache_dir: Path, *, poster_path: str, size: str) -> Path:
    """Where a poster lives in the cache: ``<cache_dir>/<size>/<file name of the poster path>``."""
    return Path(cache_dir) / size / poster_path.lstrip("/")


class _PoliteClient:
    """GETs with at least ``interval_s`` between request starts, and retries on 429/5xx/transport errors."""

    def __init__(self, *, base_url: str, interval_s: float, transport: httpx.BaseTransport | None,
                 sleep: Callable[[float], None], clock: Callable[[], float], max_retries: int) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), transport=transport, timeout=20.0,
                                    follow_redirects=True, headers={"User-Agent": "APEX poster indexer"})
        self._interval, self._sleep, self._clock, self._retries = interval_s, sleep, clock, max_retries
        self._last: float | None = None

    def get(self, url: str) -> httpx.Response | None:
        """The response (any status but 429/5xx), or None when every try failed."""
        for attempt in range(self._retries + 1):
            if self._last is not None and (wait := self._last + self._interval - self._clock()) > 0:
                self._sleep(wait)
            self._last = self._clock()
            try:
                response = self._client.get(url)
            except httpx.TransportError as exc:
                logger.warning("poster CDN unreachable on %s (%s), try %d", url, exc.__class__.__name__, attempt + 1)
                self._sleep(min(2.0**attempt, 30.0))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = response.headers.get("Retry-After", "")
                self._sleep(min(float(retry_after) if retry_after.isdigit() else 2.0**attempt, 30.0))
                continue
            return response
        return None

    def close(self) -> None:
        self._client.close()


def poster_cache_fill(*, movies: Iterable[tuple[int, str]], cache_dir: Path, base_url: str, size: str,
                      interval_s: float, transport: httpx.BaseTransport | None = None,
                      sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                      max_retries: int = 3) -> PosterFetchReport:
    """Download the posters not cached yet (resumable: cached files are kept), politely; what is on disk."""
    report = PosterFetchReport()
    client = _PoliteClient(base_url=base_url, interval_s=interval_s, transport=transport, sleep=sleep, clock=clock,
                           max_retries=max_retries)
    try:
        for movie_id, poster_path in movies:
            if not POSTER_PATH.match(poster_path or ""):
                report.invalid.append(movie_id)
                continue
            target = poster_cache_file(cache_dir, poster_path=poster_path, size=size)
            if target.exists():
                report.cached += 1
                report.posters.append((movie_id, target))
                continue
            response = client.get(f"/{size}{poster_path}")
            if response is not None and response.status_code == 404:
                report.missing.append(movie_id)
            elif (response is None or response.status_code != 200
                  or not response.headers.get("Content-Type", "").startswith("image/")):
                logger.warning("poster of movie %s not fetched (%s)", movie_id,
                               "gave up" if response is None else f"HTTP {response.status_code}")
                report.failed.append(movie_id)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")  # a killed run leaves no half file behind
                partial.write_bytes(response.content)
                partial.replace(target)
                report.fetched += 1
                report.posters.append((movie_id, target))
    finally:
        client.close()
    return report
