"""Versioned ensemble blend weights; exactly one row is active and every serving worker follows it."""

from __future__ import annotations

from django.db import models


class EnsembleWeights(models.Model):
    """One weight vector over the ensemble's models, with the DR estimate that chose it."""

    version = models.CharField(max_length=64, unique=True, help_text="e.g. dr-20261126T150000Z or a manual label")
    weights = models.JSONField(help_text='{"sasrec": 0.3, "lightgcn": 0.2, ...}; renormalised when served')
    dr_value = models.FloatField(null=True, blank=True, help_text="doubly robust estimate on validation logs")
    dr_stderr = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=32, default="dr", help_text="dr (selected offline), manual, online")
    notes = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=False, db_index=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ensemble weights"
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True),
                                               name="one_active_ensemble_weights")]

    def __str__(self) -> str:
        return f"{self.version}{' (active)' if self.is_active else ''}"
