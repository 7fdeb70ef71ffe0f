"""The plan catalogue as code: names, prices and monthly quotas. Stripe price ids come from the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanDefinition:
    code: str
    name: str
    price_cents: int
    recommendation_quota: int | None  # calls per month; None is unlimited
    event_quota: int | None  # events per month; None is unlimited
    price_env: str  # environment variable holding the Stripe Price id ("" for free)
    sort_order: int


PLAN_DEFINITIONS: tuple[PlanDefinition, ...] = (
    PlanDefinition("free", "Free", 0, 1_000, 10_000, "", 0),
    PlanDefinition("pro", "Pro", 2_900, 100_000, 1_000_000, "STRIPE_PRICE_PRO", 1),
    PlanDefinition("enterprise", "Enterprise", 29_900, 2_000_000, 20_000_000, "STRIPE_PRICE_ENTERPRISE", 2),
)
FREE_CODE = "free"
