"""Beat tasks of events: store the served impressions queued in their Redis stream."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def store_impressions() -> int:
    """Beat, every IMPRESSIONS_STORE_INTERVAL_S: store queued impression lists; returns impressions stored."""
    from .impressions import impressions_store

    return impressions_store()
