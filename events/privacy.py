"""Differentially private recommendation analytics: Laplace noise per query, and a ε accountant per member.

Neighbouring datasets differ in one interaction (event-level privacy). A count query's L1
sensitivity is the most buckets one interaction can change: 1 for hour and demographic bucket
(each interaction falls in exactly one), and the largest number of genres of any movie for the
genre histogram (the catalogue is public, so this bound leaks nothing). The released value of each
bucket is ``count + Laplace(0, sensitivity / ε)``; the set of buckets is fixed in advance (all
hours, all catalogue genres, all demographic buckets), so it does not depend on the data either.
Budgets compose sequentially: every answered query spends its ε; past the budget, queries are refused.
The analyst is the member (``user:<id>``): all of a member's API keys and their own session share one
budget, so minting keys buys no extra ε.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import ExtractHour

from accounts.selectors import api_key_ids_of
from catalog.selectors import genre_count_max, genre_list

from .demographics import DEMOGRAPHIC_BUCKETS, demographic_buckets
from .models import Event, PrivacyBudget, PrivacyBudgetLedger

logger = logging.getLogger(__name__)

DIMENSIONS = ("genre", "demographic", "hour")
MAX_QUERY_EPSILON = 2.0


class PrivacyBudgetExhausted(Exception):
    """The analyst's remaining ε cannot pay for the query; the message says how much is left."""


@dataclass(frozen=True)
class Release:
    """One answered query: noisy counts and what was spent."""

    dimension: str
    epsilon: float
    sensitivity: float
    counts: dict[str, float]
    budget: PrivacyBudget

    @property
    def noise_scale(self) -> float:
        return self.sensitivity / self.epsilon


def laplace_release(counts: dict[str, float], *, sensitivity: float, epsilon: float,
                    rng: np.random.Generator | None = None) -> dict[str, float]:
    """Each count plus independent Laplace(0, sensitivity/ε) noise (the Laplace mechanism)."""
    if epsilon <= 0 or sensitivity <= 0:
        raise ValueError("epsilon and sensitivity must be positive")
    rng = rng or np.random.default_rng()
    noise = rng.laplace(0.0, sensitivity / epsilon, size=len(counts))
    return {key: float(value + n) for (key, value), n in zip(counts.items(), noise, strict=True)}


def _interactions(kind: str | None) -> Any:
    events = Event.objects.exclude(kind=Event.Kind.IMPRESSION).order_by()
    return events.filter(kind=kind) if kind else events


def genre_sensitivity() -> float:
    """The most genres any catalogue movie has (at least 1): one interaction moves that many genre counts."""
    return float(max(genre_count_max(), 1))


def true_counts(*, dimension: str, kind: str | None = None) -> tuple[dict[str, float], float]:
    """(exact counts over a fixed, data-independent set of buckets, L1 sensitivity) for one dimension."""
    events = _interactions(kind)
    if dimension == "hour":
        counts = {f"{h:02d}": 0.0 for h in range(24)}
        for hour, n in events.annotate(h=ExtractHour("occurred_at")).values_list("h").annotate(n=Count("id")):
            counts[f"{hour:02d}"] = float(n)
        return counts, 1.0
    if dimension == "genre":
        counts = {g.name: 0.0 for g in genre_list()}
        for name, n in events.values_list("movie__genres__name").annotate(n=Count("id")):
            if name in counts:
                counts[name] = float(n)
        return counts, genre_sensitivity()
    if dimension == "demographic":
        counts = {bucket: 0.0 for bucket in DEMOGRAPHIC_BUCKETS}
        per_user = dict(events.values_list("user_id").annotate(n=Count("id")))
        for user_id, bucket in demographic_buckets(user_ids=list(per_user)).items():
            counts[bucket] += per_user[user_id]
        return counts, 1.0
    raise ValueError(f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")


def _legacy_spent(analyst: str) -> float:
    """ε a member spent through per-key budgets ('key:<id>', before budgets were per member): carried over."""
    if not analyst.startswith("user:") or not analyst[5:].isdigit():
        return 0.0
    legacy = [f"key:{pk}" for pk in api_key_ids_of(user_id=int(analyst[5:]))]
    spent = PrivacyBudget.objects.filter(analyst__in=legacy).aggregate(total=Sum("spent_epsilon"))["total"]
    return float(spent or 0.0)


def privacy_budget_get(*, analyst: str) -> PrivacyBudget:
    """The analyst's budget (``user:<id>``: one per member, shared by all their keys), created on first use."""
    budget = PrivacyBudget.objects.filter(analyst=analyst).first()
    if budget is None:
        budget, _ = PrivacyBudget.objects.get_or_create(analyst=analyst, defaults={
            "budget_epsilon": float(settings.PRIVACY_EPSILON_BUDGET),
            "spent_epsilon": _legacy_spent(analyst)})
    return budget


def privacy_budget_charge(*, analyst: str, query: str, epsilon: float, sensitivity: float) -> PrivacyBudget:
    """Spend ε from the analyst's budget (row-locked: concurrent queries cannot overspend) or refuse."""
    with transaction.atomic():
        privacy_budget_get(analyst=analyst)
        budget = PrivacyBudget.objects.select_for_update().get(analyst=analyst)
        refused = budget.spent_epsilon + epsilon > budget.budget_epsilon + 1e-9
        PrivacyBudgetLedger.objects.create(budget=budget, query=query, epsilon=epsilon, sensitivity=sensitivity,
                                           refused=refused)
        if not refused:
            budget.spent_epsilon += epsilon
            budget.save(update_fields=["spent_epsilon", "updated_at"])
    if refused:
        logger.info("privacy budget refusal: %s asked %.3f ε with %.3f left", analyst, epsilon,
                    budget.remaining_epsilon)
        raise PrivacyBudgetExhausted(
            f"Privacy budget exhausted: analyst {analyst} has spent {budget.spent_epsilon:.3f} of "
            f"{budget.budget_epsilon:.3f} ε and this query needs {epsilon:.3f} ε "
            f"({budget.remaining_epsilon:.3f} ε left). Ask for a smaller ε, or an operator can raise the "
            f"budget in admin (Events › Privacy budgets).")
    return budget


def analytics_release(*, analyst: str, dimension: str, epsilon: float, kind: str | None = None,
                      rng: np.random.Generator | None = None) -> Release:
    """Charge the analyst's budget, then release the dimension's counts with Laplace noise."""
    if not 0 < epsilon <= MAX_QUERY_EPSILON:
        raise ValueError(f"epsilon must be in (0, {MAX_QUERY_EPSILON}]")
    counts, sensitivity = true_counts(dimension=dimension, kind=kind)
    budget = privacy_budget_charge(analyst=analyst, query=dimension, epsilon=epsilon, sensitivity=sensitivity)
    noisy = laplace_release(counts, sensitivity=sensitivity, epsilon=epsilon, rng=rng)
    return Release(dimension=dimension, epsilon=epsilon, sensitivity=sensitivity, counts=noisy, budget=budget)
