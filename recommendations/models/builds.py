"""The background build that follows set-up: the semantic index and the full six-model serving bundle."""

from __future__ import annotations

from django.db import models


class BackgroundBuild(models.Model):
    """One background build: queued by bin/setup, run after bin/run starts, step k of n, then done or failed.

    Read by ``/v1/platform/status``, the admin and the portal's banner (``recommendations/background_build.py``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    steps = models.JSONField(default=list, help_text="the steps' labels, in order")
    step_index = models.PositiveSmallIntegerField(default=0, help_text="the step running (1-based); 0 before the first")
    step_label = models.CharField(max_length=128, blank=True, default="")
    config = models.JSONField(default=dict, blank=True, help_text="models, epochs, what to build")
    detail = models.JSONField(default=dict, blank=True, help_text="seconds per step, the bundle version it published")
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=128, blank=True, default="", help_text="host:pid running it")
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-queued_at", "-id"]

    def __str__(self) -> str:
        return f"background build {self.pk} {self.status}"

    @property
    def steps_total(self) -> int:
        return len(self.steps)
