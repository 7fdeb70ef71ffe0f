"""The Celery app: worker and beat share it; tasks are discovered in every app."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")

app = Celery("apex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _pin_worker_threads(**_: object) -> None:
    from .threads import pin_threads

    pin_threads()
