"""The nightly ``weights`` step: re-select the ensemble's blend weights by DR on the last window of served lists.

Lists are the impression rows of one request (``request_id``) served outside any experiment arm (an arm's lists were
drawn by its own policy); a slot's reward is 1 when the member clicked, watched, rated or watch-listed that movie
within a day of the list. The member's history is their ratings before the list was served. The estimate and the
choice are ``ml_core``'s (:func:`ml_core.builds.select_weights_from_logs`); a new weight set is stored and activated
(``source="ope"``, the reason in its notes) only when its DR lower bound beats the served weights' DR value.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.utils import timezone

from catalog.selectors import rating_list_for_user

log = logging.getLogger(__name__)

WINDOW_DAYS = 7
ATTRIBUTION = timedelta(days=1)
HISTORY_LIMIT = 200
ENGAGEMENT = ("click", "watch", "rating", "watchlist")


def served_lists_since(*, since: datetime) -> list[Any]:
    """The lists served since ``since`` outside experiments, as ``ml_core.builds.LoggedList`` values."""
    from ml_core.builds import LoggedList

    event = apps.get_model("events", "Event")
    lists: dict[str, dict[str, Any]] = {}
    for user_id, request_id, movie_id, propensity, at in (
            event.objects.filter(kind="impression", occurred_at__gte=since, arm_id__isnull=True,
                                 propensity__isnull=False).exclude(request_id="")
            .order_by("request_id", "position")
            .values_list("user_id", "request_id", "movie_id", "propensity", "occurred_at")):
        entry = lists.setdefault(request_id, {"user": user_id, "at": at, "movies": [], "props": []})
        entry["movies"].append(movie_id)
        entry["props"].append(propensity)
        entry["at"] = min(entry["at"], at)
    users = {e["user"] for e in lists.values()}
    engaged: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for user_id, movie_id, at in (event.objects.filter(kind__in=ENGAGEMENT, occurred_at__gte=since,
                                                       user_id__in=users)
                                  .values_list("user_id", "movie_id", "occurred_at")):
        engaged[(user_id, movie_id)].append(at)
    ratings = {u: list(reversed(rating_list_for_user(user=u).values_list("movie_id", "rated_at", "value")))
               for u in users}
    out = []
    for entry in lists.values():
        rows = ratings[entry["user"]]
        before = bisect.bisect_left([r[1] for r in rows], entry["at"])
        history = rows[max(0, before - HISTORY_LIMIT):before]
        rewards = [float(any(entry["at"] <= t <= entry["at"] + ATTRIBUTION
                             for t in engaged.get((entry["user"], m), ()))) for m in entry["movies"]]
        out.append(LoggedList([r[0] for r in history], entry["movies"], entry["props"], rewards,
                              ratings=[float(r[2]) for r in history]))
    return out


def ensemble_weights_from_logs(*, days: int = WINDOW_DAYS, min_lists: int | None = None,
                               now: datetime | None = None) -> dict[str, Any]:
    """The step: choose weights on the window's lists; store and activate them when they changed."""
    from ml_core.builds import select_weights_from_logs

    from . import serving
    from .serving_services import ensemble_weights_create

    engine = serving.engine_or_none()
    if engine is None:
        return {"rows": 0, "decision": "kept", "why": "no serving engine (no bundle yet)"}
    now = now or timezone.now()
    lists = served_lists_since(since=now - timedelta(days=days))
    extra = {} if min_lists is None else {"min_lists": min_lists}
    choice = select_weights_from_logs(engine, lists, **extra)
    detail: dict[str, Any] = {"rows": len(lists), "window_days": days, "weights": choice.weights, **choice.reason}
    if choice.changed:
        best = choice.reason["best"]
        row = ensemble_weights_create(version=f"ope-{now:%Y%m%dT%H%M%SZ}", weights=choice.weights,
                                      dr_value=best["dr"], dr_stderr=(best["dr_high"] - best["dr_low"]) / 3.92,
                                      source="ope", notes=json.dumps(choice.reason, default=str)[:5000],
                                      activate=True)
        detail["version"] = row.version
    log.info("nightly weights from logs: %s (%s)", detail["decision"], detail["why"])
    return detail


def experiment_arms_estimate(*, experiment: Any, days: int = WINDOW_DAYS, min_lists: int = 200,
                             now: datetime | None = None) -> dict[str, Any]:
    """Before an experiment runs: each arm's value (engagements per list) estimated off-policy from the window's
    served lists, by every estimator (``ml_core.builds.estimate_policies_from_logs``). Weights and temperature arms
    are estimable (and control, as the served policy); epsilon, tier and re-ranking arms change what the logged
    propensities cannot describe, and say so. Stored on the experiment (``offline_estimates``) and returned."""
    from ml_core.builds import estimate_policies_from_logs

    from . import serving

    now = now or timezone.now()
    arms = list(experiment.arms.order_by("-is_control", "id"))
    engine = serving.engine_or_none()
    result: dict[str, Any] = {"computed_at": now.isoformat(), "window_days": days, "arms": {}}
    policies: list[tuple[dict[str, float] | None, float | None]] = []
    estimable = []
    for arm in arms:
        config = arm.config or {}
        if arm.kind == "weights" and config.get("weights"):
            policies.append((dict(config["weights"]), None))
        elif arm.kind == "exploration" and "temperature" in config:
            policies.append((None, float(config["temperature"])))
        elif not config:  # the defaults: the policy that served the logs
            policies.append((None, None))
        else:
            result["arms"][arm.name] = {"why": f"a {arm.kind} arm ({json.dumps(config)}) changes what the logged "
                                               "propensities cannot describe: not estimable offline"}
            continue
        estimable.append(arm)
    if engine is None:
        result["why"] = "no serving engine (no bundle yet)"
    elif estimable:
        found = estimate_policies_from_logs(engine, served_lists_since(since=now - timedelta(days=days)), policies,
                                            min_lists=min_lists)
        result.update({k: v for k, v in found.items() if k != "estimates"})
        for arm, estimates in zip(estimable, found["estimates"], strict=False):
            result["arms"][arm.name] = estimates
    experiment.offline_estimates = result
    experiment.save(update_fields=["offline_estimates"])
    return result
