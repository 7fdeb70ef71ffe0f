"""Nightly pipeline runs as the admin sees them: one row per step (export, lakehouse layers, retrain, reload)."""

from __future__ import annotations

import uuid

from django.db import models


class PipelineRun(models.Model):
    """One step of one nightly run: what ran, when, how many rows, and the error if it failed."""

    class Step(models.TextChoices):
        EXPORT = "export", "Export events to bronze"
        BRONZE = "bronze", "Bronze ingest"
        SILVER = "silver", "Silver (contracts, SCD2)"
        GOLD = "gold", "Gold tables"
        RETRAIN = "retrain", "Retrain from gold"
        RELOAD = "reload", "Ask serving to reload"
        WEIGHTS = "weights", "Re-select weights by DR on served lists"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    run_id = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="groups the steps of one nightly run")
    step = models.CharField(max_length=16, choices=Step.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.BigIntegerField(default=0, help_text="rows exported, written or trained on")
    detail = models.JSONField(default=dict, blank=True, help_text="per-table rows and seconds, metrics, paths")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "id"]
        indexes = [models.Index(fields=["step", "-started_at"], name="pipelinerun_step_recent")]

    def __str__(self) -> str:
        return f"{self.step} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
