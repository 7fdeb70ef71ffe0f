"""Celery tasks of experiments: the periodic look (results stored, guardrail, Thompson allocation)."""

from __future__ import annotations

from celery import shared_task

from .services import experiments_monitor


@shared_task(acks_late=True, ignore_result=True)
def monitor_experiments() -> int:
    """Beat: store every running experiment's per-arm results, stop arms past their guardrail, and recompute
    Thompson allocations (safe to repeat: each run is one more look)."""
    return experiments_monitor()
