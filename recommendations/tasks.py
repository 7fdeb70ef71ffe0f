"""Celery tasks of the recommendations app (ids in, one service call, safe to repeat)."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.conf import settings

from events.selectors import event_unapplied_ids
from events.services import event_outbox_relay
from events.stream import stream_client, stream_enabled, stream_key

from .online.consumer import CONSUME_FLAG_TTL_MS, CONSUME_SCHEDULED, online_apply_outbox, online_consume_stream

logger = logging.getLogger(__name__)


# --- online learning (real-time loop, recommendations/online/) -------------------------------------------


@shared_task(acks_late=True, ignore_result=True)
def consume_event_stream() -> int:
    """Drain the event stream: mini-batches applied exactly once, pushed live, acked after commit.

    The run keeps reading (blocking, up to ``ONLINE_CONSUME_LINGER_S`` idle) while the flag tells producers
    it is there; after clearing the flag it drains once more, so an entry appended just before that is
    read here and one appended after it schedules another run.
    """
    flag = stream_key(CONSUME_SCHEDULED)
    try:
        stream_client().set(flag, "1", px=CONSUME_FLAG_TTL_MS)
    except redis.RedisError as exc:  # Redis down: the events wait in the outbox; the beat relay runs us again
        logger.warning("event stream unavailable, not consuming: %s", exc)
        return 0
    try:
        applied = online_consume_stream(linger_s=float(settings.ONLINE_CONSUME_LINGER_S))
    finally:
        try:
            stream_client().delete(flag)  # entries added from now on schedule another run
        except redis.RedisError as exc:  # the flag expires within CONSUME_FLAG_TTL_MS
            logger.warning("consume flag not cleared: %s", exc)
    return applied + online_consume_stream()


@shared_task(acks_late=True, ignore_result=True)
def apply_outbox_events(*, event_ids: list[str]) -> int:
    """Without Redis: apply these outbox rows in-process and push (eager mode)."""
    return online_apply_outbox(event_ids=event_ids)


@shared_task(acks_late=True, ignore_result=True)
def relay_event_outbox() -> int:
    """Beat: append outbox rows that missed the stream (Redis was down), or that it lost (Redis restarted
    empty: relayed again at once), and schedule their consumption."""
    relayed = event_outbox_relay()
    if relayed:
        logger.info("relayed %d events from the outbox", relayed)
    if stream_enabled():
        try:
            consume_event_stream.apply_async(retry=False)  # also reclaims entries a dead consumer left pending
        except Exception as exc:  # noqa: BLE001 - broker (Redis) down: the next beat run schedules it
            logger.warning("could not schedule stream consumption: %s", exc)
    else:
        online_apply_outbox(event_ids=event_unapplied_ids())
    return relayed


# --- nightly lakehouse job (recommendations.nightly) ---------------------------------------------------
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=4 * 3600)
def run_nightly_pipeline() -> int:
    """Beat, nightly: export events, bronze -> silver -> gold, retrain from gold, ask serving to reload."""
    from .nightly import nightly_run

    return len(nightly_run())


# --- nightly demographic fairness report (recommendations.fairness) --------------------------------------
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=3600)
def run_fairness_report() -> str:
    """Beat, nightly: the fairness report on the site's ratings, stored for admin; returns its status."""
    from .fairness import fairness_report_run

    return str(fairness_report_run().status)


# --- the build that follows set-up (recommendations.background_build) -----------------------------------
BUILDS_QUEUE = "builds"  # its own worker (bin/run), so a long build never holds up the event relay


@shared_task(queue=BUILDS_QUEUE, acks_late=False, ignore_result=True, soft_time_limit=4 * 3600)
def run_background_build(*, build_id: int) -> str:
    """bin/run, once after set-up: the semantic index and the full serving bundle; returns the build's status."""
    from .background_build import background_build_run

    return str(background_build_run(build_id=build_id).status)
