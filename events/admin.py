"""Operators' admin: events (read-only, filterable), the privacy-budget ledger."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apex_site.admin_base import BoundedCountPaginator, ReadOnlyAdmin

from .models import Event, PrivacyBudget, PrivacyBudgetLedger


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "movie", "value", "propensity", "policy_version", "arm_id",
                    "relayed_at", "applied_at")
    list_filter = ("kind", ("relayed_at", admin.EmptyFieldListFilter), ("applied_at", admin.EmptyFieldListFilter),
                   ("arm_id", admin.EmptyFieldListFilter), "policy_version", "created_at")
    search_fields = ("id", "user__username", "movie__title", "idempotency_key", "request_id", "external_user")
    list_select_related = ("user", "movie")
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator


class LedgerInline(admin.TabularInline):
    model = PrivacyBudgetLedger
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "query", "epsilon", "sensitivity", "refused")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PrivacyBudget)
class PrivacyBudgetAdmin(admin.ModelAdmin):
    """Operators may raise an analyst's budget; spent ε is only changed by answered queries."""

    list_display = ("analyst", "budget_epsilon", "spent_epsilon", "remaining", "updated_at")
    search_fields = ("analyst",)
    readonly_fields = ("spent_epsilon", "created_at", "updated_at")
    inlines = [LedgerInline]

    @admin.display(description="remaining ε")
    def remaining(self, obj: PrivacyBudget) -> float:
        return round(obj.remaining_epsilon, 4)


@admin.register(PrivacyBudgetLedger)
class PrivacyBudgetLedgerAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "budget", "query", "epsilon", "sensitivity", "refused")
    list_filter = ("query", "refused", "created_at")
    search_fields = ("budget__analyst",)
    list_select_related = ("budget",)
