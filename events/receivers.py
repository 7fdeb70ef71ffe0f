"""Signal receivers of events: a movie deleted in this process leaves the confirmed-ids memory at once."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete
from django.dispatch import receiver

from catalog.models import Movie

from .services import known_movies_forget


@receiver(post_delete, sender=Movie, dispatch_uid="events.movie_deleted")
def movie_deleted(sender: type[Movie], instance: Movie, **kwargs: Any) -> None:
    known_movies_forget(instance.pk)
