"""Signal receivers of accounts: a changed or deleted user leaves every process's token memory at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .authentication import user_forget


def user_changed(sender: type[User], instance: User, **_: Any) -> None:
    """After commit (and once more at once): a request between the two reads the old row, not a newer one."""
    user_forget(user_id=instance.pk)
    transaction.on_commit(lambda: user_forget(user_id=instance.pk))


def connect() -> None:
    post_save.connect(user_changed, sender=User, dispatch_uid="accounts.user_changed.save")
    post_delete.connect(user_changed, sender=User, dispatch_uid="accounts.user_changed.delete")
