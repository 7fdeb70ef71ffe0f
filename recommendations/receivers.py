"""Signal receivers: events announces recorded interactions; we schedule learning from them."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from events.signals import interaction_recorded
from events.stream import stream_client, stream_enabled, stream_key

from . import tasks

logger = logging.getLogger(__name__)


@receiver(interaction_recorded, dispatch_uid="recommendations.online.interaction_recorded")
def on_interaction_recorded(*, event_ids: list[str], relayed: bool, **_: Any) -> None:
    """After commit: consume the stream (or, without Redis, apply in-process) so the user's list refreshes."""
    if not stream_enabled():
        tasks.apply_outbox_events.apply(kwargs={"event_ids": list(event_ids)})  # no broker: run it here, now
        return
    if not relayed:
        return  # left in the outbox; the beat relay appends and schedules consumption when Redis is back
    try:
        if stream_client().set(stream_key(tasks.CONSUME_SCHEDULED), "1", nx=True, px=tasks.CONSUME_FLAG_TTL_MS):
            tasks.consume_event_stream.apply_async(retry=False)
    except Exception as exc:  # noqa: BLE001 - broker down: the beat task consumes later
        logger.warning("could not schedule stream consumption: %s", exc)
