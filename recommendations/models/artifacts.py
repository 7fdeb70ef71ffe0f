"""Model artifacts as the admin sees them: one row per model folder of the serving bundle, mirroring its manifest."""

from __future__ import annotations

from django.db import models


class ModelArtifact(models.Model):
    """A trained model (or index) in the serving bundle: version, checksum, tier and metrics."""

    name = models.CharField(max_length=64, help_text="model or component name (sasrec, retrieval, onnx/kan, ...)")
    version = models.CharField(max_length=64, help_text="manifest version of the bundle it belongs to")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the folder's manifest.json")
    tier = models.CharField(max_length=32, help_text="which serving tiers use it (1,2 / 2 / 1,2,3)")
    path = models.CharField(max_length=512)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "name"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_artifact_version")]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"
