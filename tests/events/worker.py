"""``python -m tests.events.worker <celery worker arguments>``: a real Celery worker of ``apex_site`` with the faults
the reliability tests inject through its environment (never part of the product):

* ``FAULT_APPLY_DELAY_S``: pause inside the applying transaction (a SIGKILL then lands mid-batch);
* ``FAULT_ACK_DELAY_S``: pause after the batch committed, before the stream entries are acknowledged.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def _delayed(func: Any, seconds: float) -> Any:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return func(*args, **kwargs)

    return slow


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")
    import django

    django.setup()
    from recommendations.online import apply, consumer

    if float(os.environ.get("FAULT_APPLY_DELAY_S", 0)):
        apply._apply = _delayed(apply._apply, float(os.environ["FAULT_APPLY_DELAY_S"]))
    if float(os.environ.get("FAULT_ACK_DELAY_S", 0)):
        consumer.stream_ack = _delayed(consumer.stream_ack, float(os.environ["FAULT_ACK_DELAY_S"]))
    from apex_site.celery import app

    app.worker_main(argv=sys.argv[1:])


if __name__ == "__main__":
    main()
