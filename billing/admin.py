from django.contrib import admin

from .models import AccountPlan, Plan, UsageCounter


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "price_cents", "currency", "recommendation_quota", "event_quota",
                    "stripe_price_id"]
    ordering = ["sort_order"]


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
