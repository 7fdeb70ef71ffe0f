"""Operators' admin: define an experiment and its arms, start/stop/conclude it, read its results and figure."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString

from .models import Arm, Experiment
from .plots import results_png
from .selectors import experiment_history, experiment_results_recent
from .services import experiment_arms_validate, experiment_conclude, experiment_look, experiment_start, experiment_stop


class ArmFormSet(forms.BaseInlineFormSet):
    """The arms, checked together: two or more, one control, shares summing to 1, configs of their kinds."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        arms = [{"name": f.cleaned_data["name"], "share": f.cleaned_data["share"], "kind": f.cleaned_data["kind"],
                 "config": f.cleaned_data.get("config") or {}, "is_control": f.cleaned_data.get("is_control", False)}
                for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        try:
            experiment_arms_validate(experiment=self.instance, arms=arms)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc


class ArmInline(admin.TabularInline):
    model = Arm
    formset = ArmFormSet
    extra = 2
    fields = ("name", "is_control", "share", "kind", "config", "stopped_at", "stop_reason")
    readonly_fields = ("stopped_at", "stop_reason")

    def _editable(self, obj: Experiment | None) -> bool:
        return obj is None or obj.status == Experiment.Status.DRAFT

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 2 if obj is None else 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


def _run(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Experiment], action: Any,
         done: str) -> None:
    for experiment in queryset:
        try:
            action(experiment=experiment)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{experiment.name}: {' '.join(exc.messages)}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"Experiment {experiment.name} {done}.", messages.SUCCESS)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "metric", "allocation", "status", "started_at", "stopped_at", "decision_action")
    list_filter = ("status", "metric", "allocation")
    search_fields = ("name",)
    inlines = [ArmInline]
    actions = ["estimate_offline", "start", "stop", "conclude", "look_now"]
    readonly_fields = ("status", "started_at", "stopped_at", "allocation_probabilities", "allocation_updated_at",
                       "offline_panel", "results", "decision_panel")
    fieldsets = (
        (None, {"fields": ("name", "description", "metric", "allocation", "floor_share", "guardrail_bound",
                           "alpha")}),
        ("Status", {"fields": ("status", "started_at", "stopped_at", "allocation_probabilities",
                               "allocation_updated_at")}),
        ("Before launch: estimated from the served logs", {"fields": ("offline_panel",)}),
        ("Results", {"fields": ("results", "decision_panel")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("name", "metric", "allocation", "floor_share", "guardrail_bound", "alpha")
        return self.readonly_fields + (fixed if obj is not None and obj.status != Experiment.Status.DRAFT else ())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only drafts: a started experiment's arms are referenced by logged impressions and events."""
        return (obj is None or obj.status == Experiment.Status.DRAFT) and super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete would skip the per-experiment check above
        return actions

    @admin.display(description="decision")
    def decision_action(self, obj: Experiment) -> str:
        return str((obj.decision or {}).get("action", "—"))

    @admin.action(description="Estimate the arms from the served logs (off-policy, before launch)")
    def estimate_offline(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        """The estimator lives with the engine and the logs (recommendations), named by a setting:
        experiments sits below recommendations and never imports it."""
        estimate = import_string(settings.EXPERIMENTS_OFFLINE_ESTIMATOR)
        for experiment in queryset:
            found = estimate(experiment=experiment)
            note = found.get("why") or f"{found.get('n_scored', 0)} served lists re-scored"
            self.message_user(request, f"{experiment.name}: offline estimates stored ({note}).", messages.INFO)

    @admin.display(description="offline estimates")
    def offline_panel(self, obj: Experiment) -> SafeString | str:
        found = obj.offline_estimates or {}
        if not found:
            return "Not estimated yet: run the action 'Estimate the arms from the served logs'."
        names = ("IPS", "SNIPS", "DM", "DR", "DR-clip", "switch-DR")

        def cell(e: dict[str, Any] | None) -> str:
            return "—" if not e else f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}]"

        rows = format_html_join("", "<tr><td>{}</td>" + "<td>{}</td>" * len(names) + "</tr>",
                                ((arm, *(cell(est.get(n)) for n in names)) if "why" not in est else
                                 (arm, est["why"], *("",) * (len(names) - 1))
                                 for arm, est in found.get("arms", {}).items()))
        return format_html('<table id="experiment-offline"><thead><tr><th>arm</th>{}</tr></thead><tbody>{}</tbody>'
                           "</table><p>{} — engagements per served list of the last {} days ({} usable); {}</p>",
                           format_html_join("", "<th>{}</th>", ((n,) for n in names)), rows,
                           found.get("computed_at", ""), found.get("window_days", "?"), found.get("n_usable", 0),
                           found.get("why", "95% intervals"))

    @admin.action(description="Start the selected experiments")
    def start(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        _run(self, request, queryset, experiment_start, "is running")

    @admin.action(description="Stop the selected experiments")
    def stop(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        _run(self, request, queryset, experiment_stop, "is stopped")

    @admin.action(description="Conclude the selected experiments (record the decision)")
    def conclude(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        _run(self, request, queryset, experiment_conclude, "is concluded")

    @admin.action(description="Record a look at the results now")
    def look_now(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        _run(self, request, queryset, experiment_look, "has a new look")

    # ---- the results panel and its figure --------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        plot = path("<int:experiment_id>/plot.png", self.admin_site.admin_view(self.plot_view),
                    name="experiments_experiment_plot")
        return [plot, *super().get_urls()]

    def plot_view(self, request: HttpRequest, experiment_id: int) -> HttpResponse:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        if not self.has_view_permission(request, experiment):
            return HttpResponse(status=403)
        # the stored looks only: the figure never recomputes the results the page beside it shows
        png = results_png(history=experiment_history(experiment=experiment),
                          arm_names={a.pk: a.name for a in experiment.arms.all()}, metric=experiment.metric,
                          alpha=experiment.alpha)
        return HttpResponse(png, content_type="image/png", headers={"Cache-Control": "no-store"})

    @admin.display(description="results")
    def results(self, obj: Experiment) -> SafeString | str:
        if obj.pk is None or obj.started_at is None:
            return "Start the experiment to collect results."
        r = experiment_results_recent(experiment=obj)

        def num(x: float | None, fmt: str = "{:.4f}") -> str:
            return "—" if x is None else fmt.format(x)

        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                    "<td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((a.name + (" (control)" if a.is_control else ""), num(a.allocation, "{:.3f}"),
                                  a.members, a.impressions, num(a.estimate), f"[{num(a.ci_low)}, {num(a.ci_high)}]",
                                  num(a.difference, "{:+.4f}"), num(a.p_value, "{:.3g}"),
                                  a.stop_reason or ("significant" if a.significant else ""))
                                 for a in r.arms))
        srm = ("not applicable (adaptive allocation or a stopped arm)" if r.srm is None else
               f"p = {r.srm['p_value']:.3g}, observed {r.srm['observed']} vs expected {r.srm['expected']}"
               + (" — MISMATCH" if r.srm["mismatch"] else " — fine"))
        plot = reverse("admin:experiments_experiment_plot", args=[obj.pk])
        return format_html(
            '<table id="experiment-results"><thead><tr><th>arm</th><th>traffic</th><th>members</th>'
            "<th>shown</th><th>estimate</th><th>{}% interval</th><th>vs control</th><th>always-valid p</th>"
            "<th>note</th></tr></thead><tbody>{}</tbody></table>"
            '<p id="experiment-srm">Sample-ratio check: {}</p>'
            '<p id="experiment-recommendation">Now: <strong>{}</strong> — {}</p>'
            '<p><img id="experiment-plot" src="{}" alt="estimates, p-values and traffic over time" width="800" height="600"></p>',
            round(100 * (1 - obj.alpha)), rows, srm, r.recommendation["action"], r.recommendation["reason"], plot)

    @admin.display(description="decision")
    def decision_panel(self, obj: Experiment) -> SafeString | str:
        if not obj.decision:
            return "Not concluded yet."
        d = obj.decision
        return format_html('<p id="experiment-decision"><strong>{}</strong>{} — {} (decided {})</p>',
                           d.get("action"), f": {d['winner']}" if d.get("winner") else "", d.get("reason"),
                           d.get("decided_at"))
