"""Events: the durable outbox of user interactions, and the differential-privacy budget ledger."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Event(models.Model):
    """One interaction, written durably first (the outbox row), then relayed to the stream and applied once.

    ``relayed_at`` is set when the row reached the Redis Stream (NULL: still waiting in the outbox);
    ``applied_at`` is set in the same transaction that applies it to the online learner, so a
    redelivered stream entry is skipped (exactly-once by event id).
    """

    class Kind(models.TextChoices):
        IMPRESSION = "impression", "Impression"
        CLICK = "click", "Click"
        RATING = "rating", "Rating"
        WATCH = "watch", "Watch"
        WATCHLIST = "watchlist", "Watchlist"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events")
    movie = models.ForeignKey("catalog.Movie", on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    value = models.FloatField(null=True, blank=True, help_text="rating stars, watch fraction, watchlist 1/0")
    idempotency_key = models.CharField(max_length=128, help_text="client key; a replay returns the same event")
    body_hash = models.CharField(max_length=64, blank=True, default="",
                                 help_text="SHA-256 of the event's fields; a replayed key must match it (blank: legacy)")
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="events", help_text="the key that posted it, if any")
    external_user = models.CharField(max_length=128, blank=True, default="",
                                     help_text="the API key holder's own id for its end user")
    propensity = models.FloatField(null=True, blank=True, help_text="impressions: P(shown | policy)")
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="impressions: rank shown at")
    policy_version = models.CharField(max_length=64, blank=True, default="", help_text="serving policy version")
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # An id, not a ForeignKey: experiments sits above events (docs/ARCHITECTURE.md), and a lower app's table never
    # references a higher app's. Impressions get the arm that served the list; other events the member's arm when
    # they were recorded (settings.EVENTS_ARM_RESOLVER).
    arm_id = models.PositiveBigIntegerField(null=True, blank=True,
                                         help_text="experiments.Arm the member was bucketed into (none: no experiment)")
    occurred_at = models.DateTimeField(help_text="when it happened on the client (defaults to receipt)")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    relayed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    applied_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="event_unique_user_idempotency_key"),
            models.CheckConstraint(condition=models.Q(propensity__isnull=True)
                                   | (models.Q(propensity__gt=0) & models.Q(propensity__lte=1)),
                                   name="event_propensity_in_0_1"),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="event_user_recent"),
                   models.Index(fields=["arm_id", "kind"], name="event_arm_kind",
                                condition=models.Q(arm_id__isnull=False))]

    def __str__(self) -> str:
        return f"{self.kind} by {self.user_id} on {self.movie_id}"


class PrivacyBudget(models.Model):
    """One analyst's total and spent ε (sequential composition); the row is locked while charging."""

    analyst = models.CharField(max_length=64, unique=True, help_text="'user:<id>' (staff) or 'key:<id>' (API key)")
    budget_epsilon = models.FloatField()
    spent_epsilon = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["analyst"]

    def __str__(self) -> str:
        return f"{self.analyst}: {self.spent_epsilon:.3f} / {self.budget_epsilon:.3f} ε"

    @property
    def remaining_epsilon(self) -> float:
        return max(self.budget_epsilon - self.spent_epsilon, 0.0)


class PrivacyBudgetLedger(models.Model):
    """One answered (charged) or refused analytics query."""

    budget = models.ForeignKey(PrivacyBudget, on_delete=models.CASCADE, related_name="entries")
    query = models.CharField(max_length=32)
    epsilon = models.FloatField()
    sensitivity = models.FloatField()
    refused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "privacy budget ledger entry"
        verbose_name_plural = "privacy budget ledger"

    def __str__(self) -> str:
        return f"{self.budget.analyst} {self.query} ε={self.epsilon}{' (refused)' if self.refused else ''}"
