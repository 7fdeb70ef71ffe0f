"""Visually similar movies: the adapter between Django and ``ml_core``'s CLIP poster index (docs/VISUAL.md).

One :class:`~ml_core.serving.VisualIndex` per process, loaded on first use from ``VISUAL_INDEX_DIR`` and
reloaded when ``build_visual_index`` writes a new one (each use compares the manifest's inode, modification
time and size: one ``stat``). Without an index the feature is off: :class:`VisualUnavailable` for the API (a
503), None for the movie page (no row). Building (:func:`visual_index_build`) is the operator's command only: it fetches the
catalogue's posters from TMDB's image CDN into ``POSTER_CACHE_DIR`` and loads CLIP weights, the only place
either is downloaded.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings

from catalog.selectors import movie_list_by_ids, movie_poster_paths
from catalog.services import PosterFetchReport, poster_cache_fill
from ml_core.serving import ArtifactError, VisualIndex

log = logging.getLogger(__name__)

Triple = tuple[int, str, float | None]
EXTRA = 50  # the row asks for at most this many more than it shows, so excluded movies can be dropped
NOT_BUILT = ("Visual similarity is not available on this server: no poster index has been built "
             "(an operator runs `python manage.py build_visual_index --model openai/clip-vit-base-patch32`).")

_lock = threading.Lock()
_loaded: tuple[tuple[int, int, int], VisualIndex] | None = None  # (manifest inode, mtime_ns, size), index


class VisualUnavailable(RuntimeError):
    """No visual index was built (or it fails its checksums); the message says what to do."""


def visual_index_dir() -> Path:
    """VISUAL_INDEX_DIR, or ML_ARTIFACTS_DIR/visual when that is unset."""
    return Path(settings.VISUAL_INDEX_DIR or Path(settings.ML_ARTIFACTS_DIR) / "visual")


def visual_index() -> VisualIndex:
    """This process's visual index, (re)loaded when the one on disk changed; VisualUnavailable without one."""
    global _loaded
    manifest = visual_index_dir() / "manifest.json"
    try:
        stat = manifest.stat()  # a rebuild swaps in a new folder: a new file, whatever the clock's resolution
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        _loaded = None
        raise VisualUnavailable(NOT_BUILT) from None
    loaded = _loaded
    if loaded is not None and loaded[0] == stamp:
        return loaded[1]
    with _lock:
        if _loaded is None or _loaded[0] != stamp:
            try:
                _loaded = (stamp, VisualIndex.load(visual_index_dir()))
            except (ArtifactError, OSError, ValueError, KeyError) as exc:
                log.error("visual index in %s not loaded: %s", visual_index_dir(), exc)
                raise VisualUnavailable(f"Visual similarity is not available: the poster index does not load "
                                        f"({exc}); rebuild it with `python manage.py build_visual_index`.") from exc
            log.info("visual index %s loaded: %d posters", _loaded[1].version, len(_loaded[1]))
        return _loaded[1]


def visual_reset() -> None:
    """Forget the loaded index (tests)."""
    global _loaded
    with _lock:
        _loaded = None


def visual_available() -> bool:
    """Whether a visual index is built (does not load it)."""
    return (visual_index_dir() / "manifest.json").exists()


def _movies(hits: list[tuple[int, float]]) -> list[tuple[Any, float]]:
    """(catalog movie, score) in hit order; movies deleted from the catalogue since the build are skipped."""
    movies = {m.id: m for m in movie_list_by_ids(movie_ids=[m for m, _ in hits])}
    return [(movies[m], s) for m, s in hits if m in movies]


def _summary(movie: Any) -> dict[str, Any]:
    return {"id": movie.id, "title": movie.title, "year": movie.year, "genres": [g.name for g in movie.genres.all()],
            "poster_url": movie.poster_url}


def visual_similar(*, movie_id: int, k: int) -> dict[str, Any]:
    """Movies whose posters look like this one's; KeyError when the movie has no poster in the index."""
    index = visual_index()
    if movie_id not in index:
        raise KeyError(movie_id)
    items = [{"movie_id": m.id, "score": round(s, 4), "title": m.title, "year": m.year, "poster_url": m.poster_url}
             for m, s in _movies(index.similar(movie_id, k))]
    return {"movie_id": movie_id, "model": index.model_name, "index_version": index.version, "items": items}


def visual_search(*, query: str, k: int) -> dict[str, Any]:
    """The posters that best match a description (CLIP's text tower), best first, as search results."""
    hits = visual_index().search_text(query, k)
    return {"query": query, "mode": "visual",
            "results": [{"score": round(s, 4), "movie": _summary(m)} for m, s in _movies(hits)]}


def picks_visual(*, movie_id: int, k: int, exclude: set[int]) -> list[Triple] | None:
    """The "Looks like this" row's (movie id, reason, score); None when there is no index or no poster."""
    if not visual_available():
        return None
    try:
        index = visual_index()
        hits = index.similar(movie_id, k + min(len(exclude), EXTRA)) if movie_id in index else []
    except VisualUnavailable:
        return None
    picks: list[Triple] = [(m, "Its poster looks like this one's", s) for m, s in hits if m not in exclude and m != movie_id]
    return picks[:k] or None


def visual_index_build(*, model: str, offline: bool, limit: int | None = None, batch_size: int = 32,
                       transport: httpx.BaseTransport | None = None) -> tuple[dict[str, Any], PosterFetchReport]:
    """Fetch the catalogue's posters (cached, resumable, rate-limited), embed them with CLIP, write the index."""
    from ml_core.builds import ClipEncoder, build_visual_index

    encoder = ClipEncoder.load(model, offline=offline)  # first: a wrong --model fails before any fetching
    movies = movie_poster_paths(limit=limit)
    report = poster_cache_fill(movies=movies, cache_dir=Path(settings.POSTER_CACHE_DIR),
                               base_url=settings.POSTER_CDN_URL, size=settings.POSTER_SIZE,
                               interval_s=settings.POSTER_FETCH_INTERVAL_S, transport=transport)
    snapshot = {"movies_with_poster_path": len(movies), "poster_size": settings.POSTER_SIZE}
    manifest = build_visual_index(visual_index_dir(), encoder=encoder, posters=report.posters,
                                  batch_size=batch_size, data_snapshot=snapshot)
    return manifest, report
