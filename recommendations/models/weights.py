"""Versioned ensemble blend weights; exactly one row is active and every serving worker follows it."""

from __future__ import annotations

import math

from django.core.exceptions import ValidationError
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

    def clean(self) -> None:
        """A weight per known ensemble model, each a non-negative number, at least one positive (they are
        renormalised to sum to 1 when served)."""
        from ml_core.builds import ENSEMBLE_MODELS  # imported here: model modules load with Django

        weights = self.weights
        if not isinstance(weights, dict) or not weights:
            raise ValidationError({"weights": 'An object of model -> weight, e.g. {"sasrec": 0.5, "kan": 0.5}.'})
        unknown = sorted(set(weights) - set(ENSEMBLE_MODELS))
        if unknown:
            raise ValidationError({"weights": f"Unknown model(s) {', '.join(unknown)}; the ensemble's models are "
                                              f"{', '.join(ENSEMBLE_MODELS)}."})
        bad = sorted(name for name, value in weights.items()
                     if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                     or value < 0)
        if bad:
            raise ValidationError({"weights": f"Weights must be non-negative numbers: {', '.join(bad)}."})
        if sum(weights.values()) <= 0:
            raise ValidationError({"weights": "At least one weight must be positive."})
