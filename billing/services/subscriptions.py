"""Stripe: Checkout and Customer Portal sessions out, subscription changes in (via dj-stripe webhooks)."""

from __future__ import annotations

import logging
from typing import Any, cast

import stripe
from django.conf import settings
from django.contrib.auth.models import User
from djstripe.models import Customer, Subscription
from djstripe.settings import djstripe_settings

from ..exceptions import BillingConflict, BillingUnavailable, PaymentProviderError
from ..models import AccountPlan, Plan
from ..selectors import OPERATOR_SETUP, account_plan_get, plan_free
from .plans import account_plan_set

logger = logging.getLogger(__name__)

# Statuses in which the subscribed plan applies. past_due keeps it while Stripe retries the payment.
ENTITLED_STATUSES = {"active", "trialing", "past_due"}
# Statuses after which the account falls back to Free.
ENDED_STATUSES = {"canceled", "unpaid", "incomplete_expired", "paused"}


def _api_key() -> str:
    key = djstripe_settings.get_default_api_key(livemode=settings.STRIPE_LIVE_MODE)
    if not key:
        logger.error("billing is not configured: %s", OPERATOR_SETUP)
        raise BillingUnavailable()
    return key


def billing_customer_get_or_create(*, user: User) -> Customer:
    """The user's dj-stripe Customer, created at Stripe on first use."""
    try:
        customer, created = Customer.get_or_create(subscriber=user, api_key=_api_key())
    except stripe.StripeError as exc:
        logger.warning("stripe customer create failed for user %s: %s", user.pk, exc)
        raise PaymentProviderError() from exc
    if created:
        logger.info("stripe customer %s created for user %s", customer.id, user.pk)
    return customer


def checkout_session_create(*, user: User, plan: Plan, success_url: str, cancel_url: str) -> dict[str, str]:
    """A Stripe Checkout Session subscribing the user to ``plan``; returns its id and redirect URL."""
    if not plan.stripe_price_id:
        logger.error("plan %s has no Stripe price: %s", plan.code, OPERATOR_SETUP)
        raise BillingConflict(f"The {plan.name} plan cannot be bought on this server yet.")
    current = account_plan_get(user=user)
    if current and current.stripe_subscription_id and current.status in ENTITLED_STATUSES:
        raise BillingConflict("You already have a subscription; change or cancel it in the billing portal "
                              "(POST /v1/billing/portal).")
    customer = billing_customer_get_or_create(user=user)
    metadata = {"apex_user_id": str(user.pk), "apex_plan": plan.code}
    try:
        session = stripe.checkout.Session.create(
            api_key=_api_key(), mode="subscription", customer=customer.id, client_reference_id=str(user.pk),
            line_items=[{"price": plan.stripe_price_id, "quantity": 1}], success_url=success_url,
            cancel_url=cancel_url, metadata=metadata, subscription_data={"metadata": metadata},
            allow_promotion_codes=True)
    except stripe.StripeError as exc:
        logger.warning("stripe checkout failed for user %s plan %s: %s", user.pk, plan.code, exc)
        raise PaymentProviderError() from exc
    logger.info("checkout session %s for user %s plan %s", session.id, user.pk, plan.code)
    # an open session has its URL (Stripe clears it once the session completes or expires)
    return {"id": session.id, "url": cast(str, session.url)}


def portal_session_create(*, user: User, return_url: str) -> dict[str, str]:
    """A Stripe Customer Portal session where the user manages payment and plan; returns its URL."""
    customer = billing_customer_get_or_create(user=user)
    try:
        session = stripe.billing_portal.Session.create(api_key=_api_key(), customer=customer.id,
                                                       return_url=return_url)
    except stripe.StripeError as exc:
        logger.warning("stripe portal failed for user %s: %s", user.pk, exc)
        raise PaymentProviderError() from exc
    return {"id": session.id, "url": session.url}


def _price_ids(data: dict[str, Any]) -> list[str]:
    items = (data.get("items") or {}).get("data") or []
    return [item["price"]["id"] for item in items if isinstance(item.get("price"), dict)]


def subscription_apply(*, subscription: Subscription) -> AccountPlan | None:
    """Map a synced Stripe subscription to our plan and put its subscriber on it at once."""
    user = subscription.customer.subscriber if subscription.customer_id else None
    if user is None:
        logger.warning("subscription %s has no local subscriber; ignored", subscription.id)
        return None
    data = subscription.stripe_data or {}
    status = data.get("status", "")
    period_end = subscription.current_period_end
    current = account_plan_get(user=user)
    if status in ENTITLED_STATUSES:
        plan = Plan.objects.filter(stripe_price_id__in=_price_ids(data)).order_by("-sort_order").first()
        if plan is None:
            logger.error("subscription %s has prices %s that match no plan", subscription.id, _price_ids(data))
            return current
        return account_plan_set(user=user, plan=plan, subscription_id=subscription.id, status=status,
                                current_period_end=period_end)
    if status in ENDED_STATUSES:
        if current is not None and current.stripe_subscription_id not in ("", subscription.id):
            return current  # an older subscription ended; the newer one still applies
        return account_plan_set(user=user, plan=plan_free(), subscription_id="", status=status)
    if current is not None and current.stripe_subscription_id == subscription.id:
        current.status = status
        current.save(update_fields=["status", "updated_at"])
    return current  # incomplete: wait for payment before changing the plan
