"""Celery tasks of the recommendations app (ids in, one service call, safe to repeat)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)

# --- online learning (real-time loop) ----------------------------------------------------------------
CONSUME_SCHEDULED = "consume-scheduled"  # flag next to the stream: a consume run is queued


@shared_task(acks_late=True, ignore_result=True)
def consume_event_stream() -> int:
    """Drain the event stream: mini-batches applied exactly once, acked after commit, pushed live."""
    from events.stream import stream_client, stream_key

    from .online import online_consume_stream

    stream_client().delete(stream_key(CONSUME_SCHEDULED))  # entries added from now on schedule another run
    return online_consume_stream()


@shared_task(acks_late=True, ignore_result=True)
def apply_outbox_events(*, event_ids: list[str]) -> int:
    """Without Redis: apply these outbox rows in-process and push (eager mode)."""
    from .online import online_apply_outbox

    return online_apply_outbox(event_ids=event_ids)


@shared_task(acks_late=True, ignore_result=True)
def relay_event_outbox() -> int:
    """Beat: append outbox rows that missed the stream (Redis was down) and schedule their consumption."""
    from events.services import event_outbox_relay
    from events.stream import stream_enabled

    relayed = event_outbox_relay()
    if relayed:
        logger.info("relayed %d events from the outbox", relayed)
    if stream_enabled():
        consume_event_stream.apply_async(retry=False)  # also reclaims entries a dead consumer left pending
    else:
        from events.selectors import event_unapplied_ids

        from .online import online_apply_outbox

        online_apply_outbox(event_ids=event_unapplied_ids())
    return relayed
