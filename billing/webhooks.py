"""dj-stripe webhook receivers: after dj-stripe has verified and synced a subscription, apply its plan."""

from __future__ import annotations

import logging
from typing import Any

from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event, Subscription

from .services import subscription_apply

logger = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = [
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
]


@djstripe_receiver(SUBSCRIPTION_EVENTS)
def apply_plan_on_subscription_event(sender: type, event: Event, **kwargs: Any) -> None:
    """dj-stripe's own receiver (connected first) has re-fetched and stored the subscription; map it to a plan."""
    subscription_id = (event.data.get("object") or {}).get("id")
    subscription = Subscription.objects.select_related("customer__subscriber").filter(id=subscription_id).first()
    if subscription is None:
        logger.warning("event %s: subscription %s not synced; plan unchanged", event.id, subscription_id)
        return
    subscription_apply(subscription=subscription)
