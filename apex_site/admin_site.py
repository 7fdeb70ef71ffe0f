"""The operators' admin: branded "APEX operations", people in one "Accounts" section, the product's apps first
and dj-stripe's mirror of Stripe (some forty models) last, as one "Billing (Stripe)" group folded away."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

# Django and allauth apps whose models are about people: shown inside the one "Accounts" section
ACCOUNT_APPS = ("accounts", "auth", "account", "socialaccount", "token_blacklist")
PRODUCT_APPS = ("catalog", "recommendations", "events", "billing", "experiments")
STRIPE_APP = "djstripe"
STRIPE_GROUP = "Billing (Stripe)"


class ApexAdminSite(admin.AdminSite):
    site_header = "APEX operations"
    site_title = "APEX operations"
    index_title = "Operations"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # one app's own index page: as Django lists it
            return apps
        people = [app for app in apps if app["app_label"] in ACCOUNT_APPS]
        rest = [app for app in apps if app["app_label"] not in ACCOUNT_APPS]
        if people:
            merged = dict(next((a for a in people if a["app_label"] == "accounts"), people[0]))
            merged.update(name="Accounts", app_label="accounts",
                          models=sorted((m for a in people for m in a["models"]), key=lambda m: str(m["name"])))
            rest.append(merged)
        for app in rest:
            if app["app_label"] == STRIPE_APP:
                # templates/admin/app_list.html folds a collapsed app into a closed <details>
                app.update(name=STRIPE_GROUP, collapsed=True)

        def order(app: dict[str, Any]) -> tuple[int, int, str]:
            label = app["app_label"]
            if label in PRODUCT_APPS:
                return (0, PRODUCT_APPS.index(label), "")
            if label == "accounts":
                return (1, 0, "")
            if label == STRIPE_APP:
                return (3, 0, "")
            return (2, 0, str(app["name"]))

        return sorted(rest, key=order)
