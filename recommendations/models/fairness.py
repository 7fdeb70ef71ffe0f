"""The nightly demographic fairness report on the site's own ratings (recommendations.fairness), as admin shows it."""

from __future__ import annotations

from typing import Any

from django.db import models


class FairnessReport(models.Model):
    """One run of the fairness report: per member group accuracy, exposure and calibration (ml_core.fairness)."""

    class Status(models.TextChoices):
        OK = "ok", "Report"
        NO_GROUPS = "no_groups", "No groups (no member demographics)"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    dataset = models.CharField(max_length=64, default="site", help_text="what was ranked: the site's ratings")
    n_users = models.PositiveIntegerField(default=0, help_text="members with a held-out rating")
    n_interactions = models.PositiveIntegerField(default=0)
    model_source = models.CharField(max_length=64, blank=True, default="", help_text="ensemble, ease or popularity")
    message = models.TextField(blank=True, default="", help_text="why there is no report, or the error")
    report = models.JSONField(default=dict, blank=True, help_text="the full report (ml_core.fairness)")
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"fairness {self.status} at {self.created_at:%Y-%m-%d %H:%M}"

    def overall(self, stage: str) -> dict[str, Any]:
        """The all-members metrics of one stage ("before" / "after" re-ranking); {} without a report."""
        result: dict[str, Any] = (self.report.get("overall") or {}).get(stage) or {}
        return result
