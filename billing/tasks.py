"""Beat tasks of billing: add the quota counts pending in Redis to the database rows."""

from __future__ import annotations

import logging

from celery import shared_task

from .usage_counter import CounterUnavailable, usage_flush

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def flush_usage_counters() -> int:
    """Beat, every BILLING_USAGE_FLUSH_INTERVAL_S: flush every account's pending counts; returns calls flushed."""
    try:
        return usage_flush()
    except CounterUnavailable as exc:
        logger.warning("usage counts stay pending in Redis: %s", exc)
        return 0
