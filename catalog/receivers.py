"""Signal receivers of the catalog: a saved or deleted rating makes the user's cached history stale."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .history import history_changed
from .models import Rating


@receiver(post_save, sender=Rating, dispatch_uid="catalog.rating_saved")
@receiver(post_delete, sender=Rating, dispatch_uid="catalog.rating_deleted")
def rating_history_stale(sender: type, instance: Rating, **_: Any) -> None:
    history_changed(user_ids=[instance.user_id])
