"""The online learner's checkpoints: its state after each applied mini-batch (recommendations/online/)."""

from __future__ import annotations

from django.db import models


class OnlineCheckpoint(models.Model):
    """The online learner's state after one applied mini-batch, written in the batch's own transaction.

    The applier stores it together with the events' ``applied_at`` (``events.services.event_apply_batch``), so
    state and "applied" move together (exactly-once); serving workers load the newest one when the published
    version moves. The blob is an ``.npz`` archive of plain arrays (never a pickle), produced by ``ml_core.serving.online``.
    """

    state = models.BinaryField()
    events_applied = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True, help_text="guardrail outcome of this batch")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"online state v{self.pk} ({self.events_applied} events)"
