"""Billing writes, re-exported: other apps use ``billing.services.usage_consume``."""

from .plans import account_plan_set, plans_sync
from .subscriptions import (
    billing_customer_get_or_create,
    checkout_session_create,
    portal_session_create,
    subscription_apply,
)
from .usage import usage_consume, usage_forget_over_quota

__all__ = [
    "account_plan_set",
    "billing_customer_get_or_create",
    "checkout_session_create",
    "plans_sync",
    "portal_session_create",
    "subscription_apply",
    "usage_consume",
    "usage_forget_over_quota",
]
