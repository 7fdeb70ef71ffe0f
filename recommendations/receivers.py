"""Signal receivers: events announces recorded interactions; we schedule learning from them."""

from __future__ import annotations

from typing import Any

from django.core.signals import request_started
from django.dispatch import receiver

from events.signals import interaction_recorded


@receiver(interaction_recorded, dispatch_uid="recommendations.online.interaction_recorded")
def on_interaction_recorded(*, event_ids: list[str], relayed: bool, **_: Any) -> None:
    """After commit: consume the stream (or, without Redis, apply in-process) so the user's list refreshes."""
    from .online import online_after_commit_trigger

    online_after_commit_trigger(event_ids=event_ids, relayed=relayed)


@receiver(request_started, dispatch_uid="recommendations.online.sync")
def on_request_started(**_: Any) -> None:
    """Serving workers swap in the newest online state (a cheap version check, throttled)."""
    from .online import online_state_sync

    online_state_sync()
