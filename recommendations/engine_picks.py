"""The portal's view of the serving engine: (movie id, reason, score) triples, or None when it cannot answer.

``recommendations.engine`` is the adapter to ``ml_core``; this module only reshapes its answers for pages.
None means "the engine is not available" (no artifacts, not loaded, an error): the rows then fall back to
the catalog's own signals, and the failure is logged rather than shown to the visitor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import engine

logger = logging.getLogger(__name__)

Triple = tuple[int, str, float | None]
EXTRA = 50  # ask for this many more than needed at most, so excluded (already rated) movies can be dropped
_unavailable_logged: set[str] = set()


def _call(func: Callable[..., Any], **kwargs: Any) -> Any:
    """Call one ``engine`` function; None when it fails (the page then uses catalog rows)."""
    name = getattr(func, "__name__", repr(func))
    try:
        return func(**kwargs)
    except engine.EngineUnavailable as exc:  # no artifacts built: expected, say it once
        if name not in _unavailable_logged:
            _unavailable_logged.add(name)
            logger.info("engine.%s unavailable (%s); the portal uses catalog rows", name, exc)
        return None
    except Exception:  # noqa: BLE001 - a page must render even when serving is down
        logger.exception("engine.%s failed; the portal falls back to catalog rows", name)
        return None


def _triples(items: Any, exclude: set[int], k: int) -> list[Triple] | None:
    """Normalise the engine's items (dicts or objects with movie_id/score/explanation) to triples."""
    if not items:
        return None
    result: list[Triple] = []
    for item in items:
        get = item.get if isinstance(item, dict) else (lambda key, default=None, _i=item: getattr(_i, key, default))
        movie_id = get("movie_id") if get("movie_id") is not None else get("id")
        if movie_id is None or int(movie_id) in exclude:
            continue
        explanation = get("explanation") or get("reason") or ""
        if isinstance(explanation, dict):
            explanation = explanation.get("sentence") or explanation.get("text") or ""
        score = get("score")
        result.append((int(movie_id), str(explanation), None if score is None else float(score)))
        if len(result) >= k:
            break
    return result or None


def recommend_for_user(*, user_id: int, k: int, exclude: set[int]) -> list[Triple] | None:
    """The engine's personalised ranking for a user, explained."""
    items = _call(engine.recommend_for_user, user_id=user_id, k=k + min(len(exclude), EXTRA), explain=True)
    return _triples(items, exclude, k)


def similar_movies(*, movie_id: int, k: int, exclude: set[int]) -> list[Triple] | None:
    """Movies the engine finds similar to one movie."""
    items = _call(engine.recommend_for_movie, movie_id=movie_id, k=k + min(len(exclude), EXTRA), explain=True)
    return _triples(items, exclude | {movie_id}, k)


def long_tail_for_user(*, user_id: int | None, k: int, exclude: set[int]) -> list[Triple] | None:
    """The debiased ranker's niche finds for a user."""
    items = _call(engine.recommend_long_tail, user_id=user_id, k=k + min(len(exclude), EXTRA), explain=True)
    return _triples(items, exclude, k)


def trending(*, k: int, exclude: set[int]) -> list[Triple] | None:
    """Live popularity from the online counters."""
    items = _call(engine.trending, k=k + min(len(exclude), EXTRA))
    return _triples(items, exclude, k)


def knowledge_graph(*, movie_id: int, k: int) -> dict[str, list[Triple]] | None:
    """Knowledge-graph neighbours by relation ("franchise", "director", ...)."""
    graph = _call(engine.knowledge_graph, movie_id=movie_id, k=k)
    if not graph:
        return None
    return {relation: _triples(items, {movie_id}, k) or [] for relation, items in dict(graph).items()}


def predicted_rating(*, user_id: int, movie_id: int) -> float | None:
    """The engine's predicted rating (0.5-5) of one movie for one user."""
    value = _call(engine.predict_rating, user_id=user_id, movie_id=movie_id)
    return None if value is None else max(0.5, min(5.0, float(value)))
