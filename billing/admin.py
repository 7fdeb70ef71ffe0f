from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from .models import AccountPlan, Plan, UsageCounter
from .selectors import OPERATOR_SETUP, billing_available


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "price_cents", "currency", "recommendation_quota", "event_quota",
                    "stripe_price_id"]
    ordering = ["sort_order"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Operators see what paid plans still need (customers only see that they are not available yet)."""
        if not billing_available():
            self.message_user(request, f"Paid plans cannot be bought yet: {OPERATOR_SETUP}.", messages.WARNING)
        return super().changelist_view(request, extra_context)


@admin.register(AccountPlan)
class AccountPlanAdmin(admin.ModelAdmin):
    list_display = ["user", "plan", "status", "stripe_subscription_id", "current_period_end", "updated_at"]
    list_filter = ["plan", "status"]
    search_fields = ["user__username", "user__email", "stripe_subscription_id"]
    raw_id_fields = ["user"]


@admin.register(UsageCounter)
class UsageCounterAdmin(admin.ModelAdmin):
    list_display = ["user", "api_key", "kind", "period", "count", "updated_at"]
    list_filter = ["kind", "period"]
    search_fields = ["user__username", "api_key__prefix"]
    raw_id_fields = ["user", "api_key"]

    def has_add_permission(self, request: object) -> bool:
        return False  # counters are written by metering only


# --- Users and their plans (operators' view; added for the portal/admin issue) ------------------------
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.admin import UserAdmin  # noqa: E402


class AccountPlanInline(admin.StackedInline):
    model = AccountPlan
    extra = 0
    can_delete = False
    fields = ["plan", "status", "stripe_subscription_id", "current_period_end"]
    readonly_fields = ["stripe_subscription_id", "current_period_end"]


class PeopleAdmin(UserAdmin):
    """Users with the plan they are on: filter by plan or subscription status, search by name or e-mail."""

    list_display = ["username", "email", "plan", "plan_status", "is_staff", "is_active", "date_joined"]
    list_filter = ["account_plan__plan", "account_plan__status", "is_staff", "is_active"]
    list_select_related = ["account_plan__plan"]
    inlines = [AccountPlanInline]

    @admin.display(description="plan", ordering="account_plan__plan__sort_order")
    def plan(self, user: object) -> str:
        account_plan = getattr(user, "account_plan", None)
        return account_plan.plan.name if account_plan else "Free"

    @admin.display(description="status")
    def plan_status(self, user: object) -> str:
        account_plan = getattr(user, "account_plan", None)
        return account_plan.status if account_plan else ""


if admin.site.is_registered(get_user_model()):
    admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), PeopleAdmin)

