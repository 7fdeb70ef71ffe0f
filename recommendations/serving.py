"""The adapter between Django and ``ml_core.serving`` (the only module that holds the serving engine).

One :class:`~ml_core.serving.Engine` per process, loaded lazily on first use. Every request syncs the engine once (:func:`_engine_reading`): one cache read
(Redis when configured) brings the published versions — the artifacts reload version
(``ml:artifacts:reload-version``, set by ``POST /v1/artifacts/reload``, ``build_serving_artifacts`` and the
nightly job), the active ensemble-weights version, the online-learning state version — and the member's
rating-history keys (``catalog/history.py``). A new reload version makes the process re-read the bundle
manifest once (reloading when it changed), new weights are swapped in from the database row, and a newer online
state is loaded from its checkpoint (``recommendations/online/sync.py``). With a per-process cache (no Redis), a
missing weights key falls back to one indexed query, cached for ``VERSION_TTL_S`` seconds.

Two kinds of callers: the API (:func:`recommend_user`, :func:`recommend_movie`, :func:`knowledge_graph_for`,
:func:`predict_rating`, :func:`reload_now`) gets plain dicts and :class:`EngineUnavailable`; the portal's rows
(``picks_*``) get (movie id, reason, score) triples, or None when serving cannot answer, so a page falls back to
the catalogue's own rows and still renders.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.selectors import user_get
from catalog.history import history_keys, rating_history
from experiments.assignment import SNAPSHOT_KEY, Assignment, member_arm
from ml_core.serving import Engine, half_stars, load_engine, parse_tier

from . import llm_explain
from .online import sync as online_sync
from .serving_selectors import ensemble_weights_active

log = logging.getLogger(__name__)

WEIGHTS_KEY = "apex:serving:weights-version"
BUNDLE_KEY = "ml:artifacts:reload-version"  # a bundle manifest version, or any new token: "re-check the disk"
VERSION_TTL_S = 5
HISTORY_LIMIT = 200  # most recent ratings a request scores from (and leaves out of the list)
EXTRA = 50  # portal rows ask for this many more than needed at most, so already rated movies can be dropped

Triple = tuple[int, str, float | None]
T = TypeVar("T")

_engine: Engine | None = None
_seen_reload_version: str | None = None  # the last published reload version this process acted on
_lock = threading.Lock()
_unavailable_logged: set[str] = set()
DISK_CHECK_S = 5.0
_disk_seen: dict[str, Any] = {"at": 0.0, "watching": False}  # last look at a background build, and its state


class EngineUnavailable(RuntimeError):
    """No serving bundle to load; the message says how to build one."""


# ---- the process's engine ---------------------------------------------------------------------------------
def serving_dir() -> Path:
    return Path(settings.ML_ARTIFACTS_DIR) / "serving"


def loaded_engine() -> Engine | None:
    """This process's engine if it has loaded one (never loads it)."""
    return _engine


def engine_or_none() -> Engine | None:
    """This process's engine, loading it if a bundle exists; None when there is none (or it is broken)."""
    try:
        return get_engine()
    except Exception as exc:  # noqa: BLE001 - EngineUnavailable, or a broken bundle
        log.info("no serving engine: %s", exc)
        return None


def get_engine() -> Engine:
    """This process's engine (loaded on first use), synchronised with the published versions."""
    return _engine_reading([])[0]


def _engine_reading(extra_keys: list[str]) -> tuple[Engine, dict[str, Any]]:
    """``get_engine()``, plus the cache values of ``extra_keys``, read in the same round trip as the versions."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                directory = serving_dir()
                if not (directory / "manifest.json").exists():
                    raise EngineUnavailable(f"no serving bundle in {directory}; run "
                                            "`python manage.py build_serving_artifacts`")
                engine = load_engine(directory, parse_tier(settings.APEX_SERVING_TIER))
                if settings.APEX_SHARED_POOL_TTL_S > 0:
                    engine.share_pools(CachePools(settings.APEX_SHARED_POOL_TTL_S))
                _apply_active_weights(engine)
                _engine = engine
    return _engine, _sync(_engine, extra_keys)


class CachePools:
    """The site's Redis cache as the engine's shared ranked-pool store (ml_core.serving.PoolStore): the workers
    of every machine compute a member's pool once per history change. Fails soft like every cache read."""

    PREFIX = "apex:serving:"

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s

    def get(self, key: str) -> bytes | None:
        value = cache.get(self.PREFIX + key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        cache.set(self.PREFIX + key, value, self.ttl_s)


def reset_engine() -> None:
    """Forget the loaded engine (tests, or after the bundle folder moved)."""
    global _engine, _seen_reload_version
    with _lock:
        _engine, _seen_reload_version = None, None
        _disk_seen.update(at=0.0, watching=False)
        online_sync.sync_reset()
        worker_forget()


def _sync(engine: Engine, extra_keys: list[str]) -> dict[str, Any]:
    """Apply newly published versions (bundle, weights, online state); returns everything read."""
    global _seen_reload_version
    published = cache.get_many([BUNDLE_KEY, WEIGHTS_KEY, online_sync.VERSION_KEY, *extra_keys])  # one round trip
    bundle = published.get(BUNDLE_KEY)
    if bundle and bundle != _seen_reload_version:
        _seen_reload_version = bundle  # act once per published version, not on every request
        if bundle != engine.manifest_version and engine.reload_if_changed():
            _apply_active_weights(engine)
    elif _bundle_changed_on_disk() and engine.reload_if_changed():
        _apply_active_weights(engine)
    version = published.get(WEIGHTS_KEY)
    if version is None:
        row = ensemble_weights_active()
        version = row.version if row is not None else ""
        cache.set(WEIGHTS_KEY, version, VERSION_TTL_S)
    if version and version != engine.weights_version:
        _apply_active_weights(engine)
    online_sync.online_state_sync(engine, published=published.get(online_sync.VERSION_KEY))
    worker_acknowledge(weights_version=engine.weights_version, bundle_version=engine.manifest_version,
                               tier=engine.tier_name)
    return published


def _bundle_changed_on_disk() -> bool:
    """While the build after set-up is queued or running, and once more when it has ended: whether to re-read the
    bundle's manifest (at most every ``DISK_CHECK_S``). The build runs in another process whose published version
    cannot reach this one in the embedded default (a per-process cache); this way its bundle is still swapped in."""
    now = time.monotonic()
    if now - _disk_seen["at"] < DISK_CHECK_S:
        return False
    _disk_seen["at"] = now
    try:
        from .background_build import background_build_banner  # one cached read (the database every few seconds)

        active = background_build_banner() is not None
    except Exception:  # noqa: BLE001 - no build table (yet), no database: nothing to watch
        active = False
    was_active, _disk_seen["watching"] = _disk_seen["watching"], active
    return active or was_active


def _apply_active_weights(engine: Engine) -> None:
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


def current_tier_name() -> str | None:
    """The loaded engine's tier name, or None when no engine has been loaded in this process."""
    return None if _engine is None else _engine.tier_name


def current_stats() -> dict[str, Any] | None:
    """This process's engine: requests, versions, and its ranked-pool/user-state cache (None: no engine)."""
    return None if _engine is None else _engine.stats()


# ---- the API's requests (plain dicts out) -------------------------------------------------------------------
def user_history(user: Any, limit: int = HISTORY_LIMIT, *, published: dict[str, Any] | None = None
                 ) -> tuple[list[int], list[float], list[float]]:
    """The user's rated movies, oldest first: (movie ids, unix times, ratings).

    ``published``: the values of ``catalog.history.history_keys`` read with the engine versions; with them a
    history this process already holds is served without a query (catalog/history.py).
    """
    h = rating_history(user=user, limit=limit, published=published)
    return h.movie_ids, h.times, h.ratings


def _arm(user: Any | None, published: dict[str, Any]) -> Assignment | None:
    """The member's experiment arm (experiments/assignment.py), from the snapshot read with the versions."""
    if user is None:
        return None
    try:
        return member_arm(user_id=user.pk, published=published.get(SNAPSHOT_KEY))
    except Exception:  # noqa: BLE001 - an experiment lookup must never fail a recommendation
        log.exception("experiment arm lookup failed; serving the defaults")
        return None


def recommend_user(*, user: Any | None, user_id: int | None, narrate: bool = False, **params: Any) -> dict[str, Any]:
    """Recommendations for a user (None/unknown -> cold-start list) as a plain dict with a request id.

    A member in a running experiment is served their arm's overrides (weights, tier, exploration, re-ranking) over
    the request's own parameters; ``arm`` in the answer says which (None outside experiments).

    With ``explain`` and LLM explanations configured, each explanation carries its grounded ``facts``; with
    ``narrate`` too, the LLM sentences are fetched within their time box (the API; never the portal's rows)."""
    engine, published = _engine_reading([*history_keys(user.pk), SNAPSHOT_KEY] if user is not None else [])
    history, times, ratings = user_history(user, published=published) if user is not None else ([], [], [])
    # trained user vectors are keyed by the training data's user ids: Django ids only for a catalog bundle
    key = user_id if engine.dataset == "catalog" else None
    arm = _arm(user, published)
    if arm is not None:
        params = {**params, **arm.overrides}
    result = engine.recommend_user(history, times=times, ratings=ratings, user_key=key, **params)
    payload = {"request_id": uuid.uuid4().hex, "user_id": user_id, **_decorate(engine, result.as_dict()),
               "arm": None if arm is None else arm.as_dict()}
    if history:  # one fold-in of the user's ratings, then a dot product per item
        predicted = engine.predict_ratings(history, ratings, [i["movie_id"] for i in payload["items"]])
        for item, value in zip(payload["items"], predicted, strict=True):
            item["predicted_rating"] = None if value is None else round(value, 2)
    if params.get("explain") and llm_explain.llm_enabled():
        _attach_facts(engine, payload["items"], dict(zip(history, ratings, strict=False)))
        if narrate:
            llm_explain.narrate_items(payload["items"], known_titles=catalogue_titles(engine))
    return payload


def _attach_facts(engine: Engine, items: list[dict[str, Any]], rating_of: dict[int, float]) -> None:
    """The grounded facts of each explained item (``explanation["facts"]``), for the LLM sentences."""
    for item in items:
        explanation = item.get("explanation")
        if not isinstance(explanation, dict):
            continue
        anchor = explanation.get("anchor_movie_id")
        title = None if anchor is None else (engine.metadata(anchor) or {}).get("title")
        explanation["facts"] = llm_explain.grounded_facts(
            item=item, anchor_title=title, anchor_rating=None if anchor is None else rating_of.get(int(anchor)))


_titles: tuple[str, frozenset[str]] | None = None  # (bundle version, every title it serves)


def catalogue_titles(engine: Engine) -> frozenset[str]:
    """Every title of the loaded bundle (what an LLM sentence is checked against), built once per bundle."""
    global _titles
    if _titles is None or _titles[0] != engine.manifest_version:
        titles = frozenset(str(t) for t in ((engine.metadata(m) or {}).get("title") for m in engine.movie_ids) if t)
        _titles = (engine.manifest_version, titles)
    return _titles[1]


def explanations_for_user(*, user_id: int, movie_ids: list[int]) -> list[dict[str, Any]]:
    """LLM sentences for movies the portal showed this member (their facts were remembered when shown):
    ``[{movie_id, sentence, llm, status}]``; a movie not shown (or whose facts expired) is left out."""
    facts = llm_explain.facts_recall(user_id=user_id, movie_ids=movie_ids)
    engine = engine_or_none() if facts else None  # the catalogue's titles, for the grounding check
    found = llm_explain.narrate(facts, known_titles=catalogue_titles(engine) if engine is not None else ())
    out = []
    for f in facts:
        narration = found.get(f["movie_id"])
        sentence = narration.sentence if narration is not None else None
        out.append({"movie_id": f["movie_id"], "sentence": sentence or f["template"], "llm": sentence is not None,
                    "status": narration.status if narration is not None else "missing"})
    return out


def predict_rating(*, user_id: int, movie_id: int) -> float | None:
    """The user's predicted rating of a movie in half stars (0.5-5), from their live ratings; None when they
    have rated nothing yet, or the movie (or a rating predictor) is not in the serving bundle."""
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


def _decorate(engine: Engine, payload: dict[str, Any]) -> dict[str, Any]:
    for item in payload["items"]:
        meta = engine.metadata(item["movie_id"]) or {}
        item.update(title=meta.get("title"), year=meta.get("year"), genres=meta.get("genres", []))
    payload["tier_name"] = engine.tier_name
    return payload


# ---- the portal's rows: (movie id, reason, score) triples, None when serving cannot answer ------------------
def _portal(name: str, func: Callable[[], T]) -> T | None:
    """Run one portal query; None when it fails (the page then uses catalog rows), logged once per kind."""
    try:
        return func()
    except EngineUnavailable as exc:  # no artifacts built: expected, say it once
        if name not in _unavailable_logged:
            _unavailable_logged.add(name)
            log.info("serving %s unavailable (%s); the portal uses catalog rows", name, exc)
        return None
    except Exception:  # noqa: BLE001 - a page must render even when serving is down
        log.exception("serving %s failed; the portal falls back to catalog rows", name)
        return None


def _triples(items: list[dict[str, Any]] | None, exclude: set[int], k: int) -> list[Triple] | None:
    """The items as (movie id, reason, score), leaving out ``exclude``; None when nothing is left."""
    result: list[Triple] = []
    for item in items or []:
        movie_id = int(item["movie_id"])
        if movie_id in exclude:
            continue
        explanation = item.get("explanation") or ""
        if isinstance(explanation, dict):
            explanation = explanation.get("sentence") or ""
        score = item.get("score")
        result.append((movie_id, str(explanation), None if score is None else float(score)))
        if len(result) >= k:
            break
    return result or None


def _user_items(user_id: int | None, k: int, **params: Any) -> list[dict[str, Any]]:
    user = user_get(user_id=user_id) if user_id is not None else None
    return recommend_user(user=user, user_id=user_id, k=k, explain=True, **params)["items"]  # type: ignore[no-any-return]


def _remember_shown(user_id: int | None, items: list[dict[str, Any]] | None, shown: list[Triple] | None) -> None:
    """Keep the facts of the picks a page shows, so the page can ask for their LLM sentences after it renders."""
    if user_id is not None and items and shown and llm_explain.llm_enabled():
        ids = {movie_id for movie_id, _, _ in shown}
        llm_explain.facts_remember(user_id=user_id, items=[i for i in items if int(i["movie_id"]) in ids])


def picks_for_user(*, user_id: int, k: int, exclude: set[int]) -> list[Triple] | None:
    """The engine's personalised ranking for a user, explained."""
    items = _portal("user picks", lambda: _user_items(user_id, k + min(len(exclude), EXTRA)))
    shown = _triples(items, exclude, k)
    _remember_shown(user_id, items, shown)
    return shown


def picks_similar(*, movie_id: int, k: int, exclude: set[int]) -> list[Triple] | None:
    """Movies the engine finds similar to one movie."""
    def items() -> list[dict[str, Any]]:
        try:
            return recommend_movie(movie_id=movie_id, k=k + min(len(exclude), EXTRA), explain=True)["items"]  # type: ignore[no-any-return]
        except KeyError:
            return []

    return _triples(_portal("similar movies", items), exclude | {movie_id}, k)


def picks_long_tail(*, user_id: int | None, k: int, exclude: set[int]) -> list[Triple] | None:
    """The user's list re-drawn from a 500-candidate pool, keeping the less popular 60% of the catalogue."""
    def items() -> list[dict[str, Any]]:
        found = _user_items(user_id, (k + min(len(exclude), EXTRA)) * 5, n_candidates=500)
        buckets = get_engine().popularity_buckets([i["movie_id"] for i in found])
        return [i for i, bucket in zip(found, buckets, strict=True) if bucket is not None and bucket <= 2]

    found = _portal("long tail", items)
    shown = _triples(found, exclude, k)
    _remember_shown(user_id, found, shown)
    return shown


def picks_knowledge_graph(*, movie_id: int, k: int) -> dict[str, list[Triple]] | None:
    """Knowledge-graph neighbours by relation ("franchise", "director", ...)."""
    def graph() -> dict[str, Any]:
        try:
            return knowledge_graph_for(movie_id=movie_id, k=k)["relations"]  # type: ignore[no-any-return]
        except KeyError:
            return {}

    relations = _portal("knowledge graph", graph)
    if not relations:
        return None
    return {rel: _triples([{**i, "explanation": f"Same {rel}"} for i in items], {movie_id}, k) or []
            for rel, items in relations.items()}


def picks_predicted_rating(*, user_id: int, movie_id: int) -> float | None:
    """The engine's predicted rating (0.5-5) of one movie for one user."""
    value = _portal("predicted rating", lambda: predict_rating(user_id=user_id, movie_id=movie_id))
    return None if value is None else max(0.5, min(5.0, float(value)))


# ---- which serving workers run which weights and bundle, as each says (the admin and the status endpoint) ------
# Every process that serves acknowledges in the shared cache what its engine runs, from its per-request sync,
# writing only when that changed or once a minute (a heartbeat), so a request pays nothing most of the time. A
# worker that stops drops out after ACK_TTL_S. Activation in the admin reads these acknowledgements instead of
# assuming every worker swapped: the weights are *active* at once, *running* only where a worker said so.
WORKER_KEY_PREFIX = "apex:serving:worker:"
REGISTRY_KEY = "apex:serving:workers"
ACK_TTL_S = 300  # a worker silent this long (no heartbeat) is no longer listed
HEARTBEAT_S = 60.0
REGISTRY_MAX = 256

_ack_lock = threading.Lock()
_last_ack: dict[str, Any] = {"state": None, "at": 0.0}


def worker_id() -> str:
    """host:pid of this process (read at call time: workers fork after import)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_acknowledge(*, weights_version: str, bundle_version: str, tier: str) -> None:
    """Say what this worker's engine runs, when that changed or a heartbeat is due."""
    state = (weights_version, bundle_version, tier, os.getpid())
    now = time.monotonic()
    with _ack_lock:
        if state == _last_ack["state"] and now - _last_ack["at"] < HEARTBEAT_S:
            return
        _last_ack.update(state=state, at=now)
    wid = worker_id()
    cache.set(WORKER_KEY_PREFIX + wid, {"worker": wid, "weights_version": weights_version,
                                        "bundle_version": bundle_version, "tier": tier,
                                        "seen_at": timezone.now().isoformat()}, ACK_TTL_S)
    registry = cache.get(REGISTRY_KEY) or []
    if wid not in registry:  # a lost update (two workers starting at once) heals at the next heartbeat
        cache.set(REGISTRY_KEY, [*registry, wid][-REGISTRY_MAX:], None)


def worker_forget() -> None:
    """This process no longer serves (tests, a reset engine): acknowledge again on the next request."""
    with _ack_lock:
        _last_ack.update(state=None, at=0.0)


def serving_workers() -> list[dict[str, Any]]:
    """The workers heard from in the last ``ACK_TTL_S``: worker, weights and bundle versions, tier, seen_at."""
    registry = cache.get(REGISTRY_KEY) or []
    found = cache.get_many([WORKER_KEY_PREFIX + w for w in registry])
    return sorted(found.values(), key=lambda row: row["worker"])


def weights_running(version: str) -> tuple[int, int]:
    """(workers running these weights, workers heard from)."""
    workers = serving_workers()
    return sum(1 for w in workers if w["weights_version"] == version), len(workers)
