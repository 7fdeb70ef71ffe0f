"""Signals events sends after commit (docs/ARCHITECTURE.md): higher apps listen, events never imports them."""

from django.dispatch import Signal

# Sent after the outbox rows committed (and were relayed when Redis is up).
# kwargs: event_ids (list[str]), user_ids (list[int]), relayed (bool)
interaction_recorded = Signal()

