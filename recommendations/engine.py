"""Adapter between Django and ml_core's serving API (the only place that calls ml_core's engine).

One engine per process, loaded lazily on the first request (or by Celery's ``worker_process_init``).
On every request the adapter compares two published versions with the loaded ones, cheaply (one cache
read for both, which also carries the member's rating-history keys, catalog/history.py; Redis when
configured): the active ensemble-weights version (hot-swapped from the database row) and the artifacts reload version (``ml:artifacts:reload-version``, set by ``POST /v1/artifacts/reload``,
``build_serving_artifacts`` and the nightly job's reload step). A reload version this process has not seen
yet makes it re-read the bundle manifest once and reload the bundle when the manifest's version changed.
With a per-process cache (no Redis), a missing weights key falls back to one indexed query, cached for
``VERSION_TTL_S`` seconds.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache

from accounts.selectors import user_get

_engine = None
_seen_reload_version: str | None = None  # the last published reload version this process acted on
_lock = threading.Lock()
log = logging.getLogger(__name__)

WEIGHTS_KEY = "apex:serving:weights-version"
BUNDLE_KEY = "ml:artifacts:reload-version"  # a bundle manifest version, or any new token: "re-check the disk"
VERSION_TTL_S = 5


class EngineUnavailable(RuntimeError):
    """No serving bundle to load; the message says how to build one."""


def current_tier_name() -> str | None:
    """The loaded engine's tier name, or None when no engine has been loaded in this process."""
    return None if _engine is None else getattr(_engine, "tier_name", None)


def current_cache_stats() -> dict[str, int] | None:
    """Entries, bytes, hits and misses of this process's ranked-pool and user-state cache (None: no engine)."""
    return None if _engine is None else _engine.bundle.user_states.stats()


def serving_dir() -> Path:
    return Path(settings.ML_ARTIFACTS_DIR) / "serving"


def get_engine() -> Any:
    """This process's engine (loaded on first use), synchronised with the published versions."""
    return get_engine_reading([])[0]


def get_engine_reading(extra_keys: list[str]) -> tuple[Any, dict[str, Any]]:
    """``get_engine()``, plus the cache values of ``extra_keys``, read in the same round trip as the versions."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from ml_core.serving import load_engine, parse_tier

                directory = serving_dir()
                if not (directory / "manifest.json").exists():
                    raise EngineUnavailable(f"no serving bundle in {directory}; run "
                                            "`python manage.py build_serving_artifacts`")
                _engine = load_engine(directory, parse_tier(settings.APEX_SERVING_TIER))
                _apply_active_weights(_engine)
    return _engine, _sync(_engine, extra_keys)


def reset_engine() -> None:
    """Forget the loaded engine (tests, or after the bundle folder moved)."""
    global _engine, _seen_reload_version
    with _lock:
        _engine, _seen_reload_version = None, None


def warm(**_: object) -> None:
    """Celery ``worker_process_init`` hook: load the engine before the first task needs it."""
    try:
        get_engine()
    except EngineUnavailable as exc:
        log.warning("serving engine not loaded at worker start: %s", exc)


def _sync(engine: Any, extra_keys: list[str]) -> dict[str, Any]:
    """Apply newly published versions; returns everything read (``extra_keys`` included)."""
    global _seen_reload_version
    published = cache.get_many([BUNDLE_KEY, WEIGHTS_KEY, *extra_keys])  # one round trip to Redis
    bundle = published.get(BUNDLE_KEY)
    if bundle and bundle != _seen_reload_version:
        _seen_reload_version = bundle  # act once per published version, not on every request
        if bundle != engine.manifest_version and engine.reload_if_changed():
            _apply_active_weights(engine)
    version = published.get(WEIGHTS_KEY)
    if version is None:
        version = _active_version()
        cache.set(WEIGHTS_KEY, version, VERSION_TTL_S)
    if version and version != engine.weights_version:
        _apply_active_weights(engine)
    return published


def _active_version() -> str:
    from .serving_selectors import ensemble_weights_active

    row = ensemble_weights_active()
    return row.version if row is not None else ""


def _apply_active_weights(engine: Any) -> None:
    from .serving_selectors import ensemble_weights_active

    row = ensemble_weights_active()
    if row is not None and row.version != engine.weights_version:
        try:
            engine.set_weights(row.weights, row.version)
        except ValueError as exc:
            log.error("active ensemble weights %s not applied: %s", row.version, exc)


def publish_weights_version(version: str) -> None:
    """Tell every worker (through the shared cache) that these weights are now active."""
    cache.set(WEIGHTS_KEY, version, None)


def publish_bundle_version(version: str) -> None:
    """Tell every worker (through the shared cache) to re-check the bundle on disk and reload it if it changed."""
    cache.set(BUNDLE_KEY, version, None)


def reload_now() -> dict[str, Any]:
    """Reload this process's bundle if changed and publish its version for the others."""
    engine = get_engine()
    changed = engine.reload_if_changed()
    _apply_active_weights(engine)
    publish_bundle_version(engine.manifest_version)
    return {"reloaded": changed, "bundle_version": engine.manifest_version, "tier": engine.tier_name,
            "weights_version": engine.weights_version}


# ---- requests (plain values out) ------------------------------------------------------------------------
HISTORY_LIMIT = 200  # most recent ratings a request scores from (and leaves out of the list)


def user_history(user: Any, limit: int = HISTORY_LIMIT, *, published: dict[str, Any] | None = None
                 ) -> tuple[list[int], list[float], list[float]]:
    """The user's rated movies, oldest first: (movie ids, unix times, ratings).

    ``published``: the values of ``catalog.history.history_keys`` read with the engine versions; with them a
    history this process already holds is served without a query (catalog/history.py).
    """
    from catalog.history import rating_history

    h = rating_history(user=user, limit=limit, published=published)
    return h.movie_ids, h.times, h.ratings


def recommend_user(*, user: Any | None, user_id: int | None, **params: Any) -> dict[str, Any]:
    """Recommendations for a user (None/unknown -> cold-start list) as a plain dict with a request id."""
    from catalog.history import history_keys

    engine, published = get_engine_reading(history_keys(user.pk) if user is not None else [])
    history, times, ratings = user_history(user, published=published) if user is not None else ([], [], [])
    # trained user vectors are keyed by the training data's user ids: Django ids only for a catalog bundle
    key = user_id if engine.bundle.ensemble.get("dataset") == "catalog" else None
    result = engine.recommend_user(history, times=times, ratings=ratings, user_key=key, **params)
    payload = {"request_id": uuid.uuid4().hex, "user_id": user_id, **_decorate(engine, result.as_dict())}
    if history:  # one fold-in of the user's ratings, then a dot product per item
        predicted = engine.predict_ratings(history, ratings, [i["movie_id"] for i in payload["items"]])
        for item, value in zip(payload["items"], predicted, strict=True):
            item["predicted_rating"] = None if value is None else round(value, 2)
    return payload


def predict_rating(*, user_id: int, movie_id: int) -> float | None:
    """The user's predicted rating of a movie in half stars (0.5-5), from their live ratings; None when they
    have rated nothing yet, or the movie (or a rating predictor) is not in the serving bundle."""
    from ml_core.rating import half_stars

    engine = get_engine()
    user = user_get(user_id=user_id)
    history, _, ratings = user_history(user) if user is not None else ([], [], [])
    if not history:
        return None
    value = engine.predict_rating(history, ratings, movie_id)
    return None if value is None else half_stars(value)


def recommend_movie(*, movie_id: int, **params: Any) -> dict[str, Any]:
    """Movies to watch after one movie; KeyError when the engine does not know it."""
    engine = get_engine()
    return {"movie_id": movie_id, **_decorate(engine, engine.recommend_item(movie_id, **params).as_dict())}


def knowledge_graph_for(*, movie_id: int, k: int = 10) -> dict[str, Any]:
    engine = get_engine()
    graph = engine.knowledge_graph(movie_id, k)
    for items in graph["relations"].values():
        for item in items:
            item["title"] = (engine.metadata(item["movie_id"]) or {}).get("title")
    return graph


def _decorate(engine: Any, payload: dict[str, Any]) -> dict[str, Any]:
    for item in payload["items"]:
        meta = engine.metadata(item["movie_id"]) or {}
        item.update(title=meta.get("title"), year=meta.get("year"), genres=meta.get("genres", []))
    payload["tier_name"] = engine.tier_name
    return payload


# ---- the portal's entry points (see recommendations/engine_picks.py) --------------------------------------
def recommend_for_user(*, user_id: int, k: int = 10, explain: bool = True) -> list[dict[str, Any]]:
    user = user_get(user_id=user_id)
    return recommend_user(user=user, user_id=user_id, k=k, explain=explain)["items"]


def recommend_for_movie(*, movie_id: int, k: int = 10, explain: bool = True) -> list[dict[str, Any]]:
    try:
        return recommend_movie(movie_id=movie_id, k=k, explain=explain)["items"]
    except KeyError:
        return []


def recommend_long_tail(*, user_id: int | None, k: int = 10, explain: bool = True) -> list[dict[str, Any]]:
    """The user's list re-drawn from a 500-candidate pool, keeping the less popular 60% of the catalogue."""
    engine = get_engine()
    user = user_get(user_id=user_id) if user_id is not None else None
    items = recommend_user(user=user, user_id=user_id, k=k * 5, n_candidates=500, explain=explain)["items"]
    bucket = engine.bundle.auditor.bucket
    return [i for i in items if bucket[engine.item_index(i["movie_id"])] <= 2][:k]


def trending(*, k: int = 10) -> list[dict[str, Any]]:
    """Most interacted-with movies by the live counters (online learner updates them)."""
    engine = get_engine()
    counts = engine.popularity.counts
    top = counts.argsort()[::-1][:k]
    return [{"movie_id": engine.movie_ids[i], "score": float(counts[i]), "explanation": "Trending now"} for i in top]


def knowledge_graph(*, movie_id: int, k: int = 10) -> dict[str, list[dict[str, Any]]]:
    try:
        graph = knowledge_graph_for(movie_id=movie_id, k=k)
    except KeyError:
        return {}
    return {rel: [{"movie_id": i["movie_id"], "score": i["score"], "explanation": f"Same {rel}"} for i in items]
            for rel, items in graph["relations"].items()}
