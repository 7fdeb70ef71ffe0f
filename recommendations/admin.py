"""Admin for the recommendations app."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from apex_site.admin_base import ReadOnlyAdmin

from .models import BackgroundBuild, EnsembleWeights, FairnessReport, ModelArtifact, OnlineCheckpoint, PipelineRun


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    """Nightly runs, step by step: status, timing, rows and the error of a failed step (read-only)."""

    list_display = ("started_at", "step", "status", "rows", "seconds", "run_id")
    list_filter = ("status", "step")
    search_fields = ("run_id", "error")
    date_hierarchy = "started_at"
    readonly_fields = (
        "run_id",
        "step",
        "status",
        "started_at",
        "finished_at",
        "rows",
        "detail",
        "error",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


@admin.register(BackgroundBuild)
class BackgroundBuildAdmin(admin.ModelAdmin):
    """The build that follows set-up (semantic index, full six-model bundle): step k of n, then done or failed."""

    list_display = ("id", "status", "progress", "queued_at", "started_at", "finished_at", "bundle_version")
    list_filter = ("status",)
    readonly_fields = ("status", "progress", "steps", "step_index", "step_label", "config", "detail", "error",
                       "worker", "queued_at", "started_at", "finished_at", "updated_at")
    fields = readonly_fields

    @admin.display(description="progress")
    def progress(self, obj: BackgroundBuild) -> str:
        if obj.status == BackgroundBuild.Status.QUEUED:
            return f"waiting for bin/run ({obj.steps_total} steps)"
        if obj.status == BackgroundBuild.Status.RUNNING:
            return f"step {obj.step_index} of {obj.steps_total}: {obj.step_label}"
        if obj.status == BackgroundBuild.Status.FAILED:
            return f"failed at step {obj.step_index} of {obj.steps_total}: {obj.step_label}"
        return f"done: {obj.steps_total} steps"

    @admin.display(description="bundle published")
    def bundle_version(self, obj: BackgroundBuild) -> str:
        return str(obj.detail.get("bundle_version") or "—")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(EnsembleWeights)
class EnsembleWeightsAdmin(admin.ModelAdmin):
    """Weight versions: edit a vector, then 'Activate' it; every serving worker swaps it in without a restart."""

    list_display = ("version", "is_active", "workers_running", "weights_rounded", "source", "dr_value", "dr_stderr",
                    "activated_at", "created_at")
    list_filter = ("is_active", "source")
    search_fields = ("version", "notes")
    readonly_fields = ("is_active", "workers_running", "activated_at", "created_at", "updated_at")

    @admin.display(description="serving workers running it")
    def workers_running(self, obj: EnsembleWeights) -> str:
        """What the workers acknowledged (recommendations/serving.py), never assumed from the database."""
        from .serving import weights_running

        running, heard = weights_running(obj.version)
        return f"{running} of {heard}" if heard else "no worker has served yet"

    @admin.display(description="weights")
    def weights_rounded(self, obj: EnsembleWeights) -> str:
        return ", ".join(f"{name} {float(value):.3f}" for name, value in sorted((obj.weights or {}).items()))
    actions = ["activate"]

    @admin.action(description="Activate the selected weights (hot reload in every worker)")
    def activate(self, request, queryset) -> None:  # noqa: ANN001
        from django.contrib import messages

        from .serving_services import ensemble_weights_activate

        if queryset.count() != 1:
            self.message_user(request, "Select exactly one weights version to activate.", messages.ERROR)
            return
        row = ensemble_weights_activate(weights_id=queryset.get().id)
        from .serving import weights_running

        running, heard = weights_running(row.version)
        # not a green "done": the database says active, only the workers' acknowledgements say running
        self.message_user(request, f"Weights {row.version} are now the active version. Serving workers swap them in "
                                   f"on their next request; {running} of {heard} workers heard from run them so far "
                                   "(the 'serving workers running it' column and GET /v1/platform/status show their "
                                   "acknowledgements).", messages.INFO)


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin):
    """Artifacts of the serving bundles, mirrored from their manifests (read-only)."""

    list_display = ("name", "version", "tier", "sha256", "created_at")
    list_filter = ("tier", "name")
    search_fields = ("name", "version", "sha256")
    readonly_fields = ("name", "version", "sha256", "tier", "path", "metrics", "created_at", "updated_at")

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(OnlineCheckpoint)
class OnlineCheckpointAdmin(ReadOnlyAdmin):
    """The online learner's checkpoints: written by the applier only, viewable and never edited here."""

    list_display = ("id", "created_at", "events_applied", "rolled_back", "loss")
    exclude = ("state",)
    readonly_fields = ("events_applied", "report", "created_at")

    @admin.display(boolean=True)
    def rolled_back(self, obj: OnlineCheckpoint) -> bool:
        return bool(obj.report.get("rolled_back"))

    @admin.display()
    def loss(self, obj: OnlineCheckpoint) -> Any:
        return obj.report.get("loss")


FAIRNESS_COLUMNS = ("group", "members", "NDCG@10 before [95% CI]", "NDCG@10 after", "HR@10 before [95% CI]",
                    "HR@10 after", "exposure Gini", "KL genre vs own history", "KL popularity vs own history")


@admin.register(FairnessReport)
class FairnessReportAdmin(ReadOnlyAdmin):
    """The nightly fairness report on the site's ratings: per member group, before → after re-ranking (read-only)."""

    list_display = ("created_at", "status", "dataset", "n_users", "model_source", "ndcg_before", "ndcg_after",
                    "seconds")
    list_filter = ("status", "model_source")
    date_hierarchy = "created_at"
    fields = ("created_at", "status", "dataset", "n_users", "n_interactions", "model_source", "seconds", "message",
              "groups", "report")
    readonly_fields = fields

    @admin.display(description="NDCG@10 before re-ranking")
    def ndcg_before(self, obj: FairnessReport) -> Any:
        value = obj.overall("before").get("ndcg@10")
        return "-" if value is None else f"{value:.4f}"

    @admin.display(description="NDCG@10 after re-ranking")
    def ndcg_after(self, obj: FairnessReport) -> Any:
        value = obj.overall("after").get("ndcg@10")
        return "-" if value is None else f"{value:.4f}"

    @admin.display(description="Groups († fewer than 20 members)")
    def groups(self, obj: FairnessReport) -> Any:
        from django.utils.html import format_html, format_html_join

        from .fairness import fairness_group_rows

        tables = []
        for attribute, rows in fairness_group_rows(obj.report):
            head = format_html_join("", "<th>{}</th>", ((c,) for c in FAIRNESS_COLUMNS))
            body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),)
                                                       for row in rows))
            tables.append(format_html("<h4>By {}</h4><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
                                      attribute, head, body))
        return format_html_join("", "{}", ((t,) for t in tables)) if tables else "-"
