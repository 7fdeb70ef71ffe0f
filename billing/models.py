"""Plans with monthly quotas, which plan each account is on, and metered usage."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class UsageKind(models.TextChoices):
    RECOMMENDATIONS = "recommendations", "Recommendation calls"
    EVENTS = "events", "Events"


class Plan(models.Model):
    """A price point with monthly quotas; quotas of None mean unlimited."""

    class Code(models.TextChoices):
        FREE = "free", "Free"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    code = models.CharField(max_length=20, choices=Code.choices, unique=True)
    name = models.CharField(max_length=50)
    price_cents = models.PositiveIntegerField(help_text="Monthly price in the smallest currency unit")
    currency = models.CharField(max_length=3, default="usd")
    recommendation_quota = models.PositiveBigIntegerField(null=True, blank=True, help_text="Calls per month")
    event_quota = models.PositiveBigIntegerField(null=True, blank=True, help_text="Events per month")
    stripe_price_id = models.CharField(max_length=255, blank=True, help_text="Stripe Price (price_…) for checkout")
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name

    def quota_for(self, kind: str) -> int | None:
        """The monthly limit for one usage kind (None: unlimited)."""
        quotas: dict[str, int | None] = {UsageKind.RECOMMENDATIONS: self.recommendation_quota,
                                          UsageKind.EVENTS: self.event_quota}
        return quotas[kind]


class AccountPlan(models.Model):
    """Which plan a user's account is on, kept in step with Stripe by webhooks."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_plan")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=32, blank=True, help_text="Stripe subscription status")
    current_period_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return f"{self.user} on {self.plan}"


class UsageCounter(models.Model):
    """Calls of one kind in one month: the row with no key is the account total, keyed rows break it down."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_counters")
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE, null=True, blank=True,
                                related_name="usage_counters")
    kind = models.CharField(max_length=32, choices=UsageKind.choices)
    period = models.DateField(help_text="First day of the (UTC) calendar month")
    count = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period", "user_id", "kind", "api_key_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "period"], condition=Q(api_key__isnull=True),
                                    name="usage_one_total_per_account_kind_period"),
            models.UniqueConstraint(fields=["user", "api_key", "kind", "period"], condition=Q(api_key__isnull=False),
                                    name="usage_one_row_per_key_kind_period"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.period:%Y-%m}: {self.count}"
