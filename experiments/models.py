"""Experiments: arms served to deterministically bucketed members, their results over time, the decision."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import models


def _salt() -> str:
    return secrets.token_hex(8)


class Experiment(models.Model):
    """An A/B/n test (or a Thompson-sampling bandit) over serving arms, judged on one metric."""

    class Metric(models.TextChoices):
        CLICK_THROUGH = "click_through", "Click-through (impressions clicked)"
        RATING_RATE = "rating_rate", "Rating rate (impressions rated)"
        WATCH_RATE = "watch_rate", "Watch rate (impressions watched)"
        MEAN_RATING = "mean_rating", "Mean rating (of rated impressions)"

    class Allocation(models.TextChoices):
        FIXED = "fixed", "Fixed shares (A/B/n)"
        THOMPSON = "thompson", "Thompson sampling (adaptive, with a floor per arm)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        CONCLUDED = "concluded", "Concluded"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.CLICK_THROUGH)
    allocation = models.CharField(max_length=16, choices=Allocation.choices, default=Allocation.FIXED)
    floor_share = models.FloatField(default=0.1, help_text="Thompson: the least traffic share any live arm keeps "
                                                           "(so every arm's estimate stays valid), 0 to 1/arms")
    guardrail_bound = models.FloatField(default=0.05, help_text="an arm is stopped when its metric is, with 1 - alpha "
                                        "always-valid confidence, more than this below control's, in the metric's "
                                        "units (0.05: five points of a rate; for mean rating, stars)")
    alpha = models.FloatField(default=0.05, help_text="significance level of the always-valid (mSPRT) test")
    salt = models.CharField(max_length=32, default=_salt, editable=False,
                            help_text="hashed with each member id to bucket them; fixed for the experiment's life")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    allocation_probabilities = models.JSONField(default=dict, blank=True,
                                                help_text="Thompson: {arm id: share} last computed (members' arms "
                                                          "are stable until the next computation)")
    allocation_updated_at = models.DateTimeField(null=True, blank=True)
    decision = models.JSONField(default=dict, blank=True, help_text="the conclusion: winner, why, the numbers then")
    offline_estimates = models.JSONField(default=dict, blank=True,
                                         help_text="each arm's value estimated from the served logs before launch "
                                                   "(IPS, SNIPS, DM, DR, DR-clip, switch-DR with 95% intervals)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(floor_share__gte=0) & models.Q(floor_share__lte=1),
                                   name="experiment_floor_share_0_1"),
            models.CheckConstraint(condition=models.Q(guardrail_bound__gt=0), name="experiment_guardrail_bound_positive"),
            models.CheckConstraint(condition=models.Q(alpha__gt=0) & models.Q(alpha__lt=1), name="experiment_alpha_0_1"),
            # one experiment runs at a time (every impression carries one arm), even when two starts race
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"),
                                    name="experiment_one_running"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display().lower()})"

    def clean(self) -> None:
        errors = {}
        if not 0 <= self.floor_share <= 1:
            errors["floor_share"] = "The floor share is a fraction of traffic, between 0 and 1."
        if not self.guardrail_bound > 0:
            errors["guardrail_bound"] = "The guardrail bound is a positive drop in the metric's units (e.g. 0.05)."
        if not 0 < self.alpha < 1:
            errors["alpha"] = "The significance level is between 0 and 1 (e.g. 0.05)."
        if errors:
            raise ValidationError(errors)


class Arm(models.Model):
    """One variant of serving: its share of traffic and what it changes for the members bucketed into it."""

    class Kind(models.TextChoices):
        WEIGHTS = "weights", "Ensemble weight set"
        TIER = "tier", "Serving tier"
        EXPLORATION = "exploration", "Exploration (temperature or ε)"
        RERANK = "rerank", "Re-ranking (MMR λ)"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=64)
    share = models.FloatField(help_text="fraction of the experiment's members; the arms' shares sum to 1")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True, help_text='by kind: weights {"weights": {"sasrec": 0.5, '
                              '"ease": 0.5}}; tier {"tier": "lite"} or {"tier": "full"}; exploration '
                              '{"temperature": 0.5} or {"epsilon": 0.1}; rerank {"mmr_lambda": 0.9}; {} serves the '
                              'defaults')
    is_control = models.BooleanField(default=False)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="stopped by the guardrail: no more traffic")
    stop_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["experiment", "-is_control", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name_per_experiment"),
            models.UniqueConstraint(fields=["experiment"], condition=models.Q(is_control=True),
                                    name="arm_one_control_per_experiment"),
            models.CheckConstraint(condition=models.Q(share__gte=0) & models.Q(share__lte=1), name="arm_share_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (control)' if self.is_control else ''}"

    def clean(self) -> None:
        from .arms import arm_config_validate

        if not 0 <= self.share <= 1:
            raise ValidationError({"share": "A share is a fraction of traffic, between 0 and 1."})
        arm_config_validate(kind=self.kind, config=self.config)


class ResultSnapshot(models.Model):
    """One arm's estimate at one time (the monitor stores one per arm per run): the plots over time."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(db_index=True)
    members = models.PositiveIntegerField(help_text="members with a measured value (the unit of analysis)")
    total = models.FloatField(help_text="sum of the members' values")
    total_sq = models.FloatField(help_text="sum of their squares (with members and total: the test's statistics)")
    impressions = models.PositiveIntegerField(help_text="distinct movies shown to the arm's members")
    estimate = models.FloatField(null=True)
    ci_low = models.FloatField(null=True)
    ci_high = models.FloatField(null=True)
    p_value = models.FloatField(null=True, help_text="always-valid p-value against control (None for control)")
    allocation = models.FloatField(help_text="the arm's traffic share when computed")

    class Meta:
        ordering = ["experiment", "computed_at", "arm"]

    def __str__(self) -> str:
        return f"{self.arm} at {self.computed_at:%Y-%m-%d %H:%M}: {self.estimate}"
