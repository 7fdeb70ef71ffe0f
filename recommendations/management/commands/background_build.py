"""`python manage.py background_build [--queue | --start | --run ID]`: the build that follows set-up."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...background_build import (
    background_build_pending,
    background_build_queue,
    background_build_run,
    background_build_start,
)


class Command(BaseCommand):
    help = ("The semantic search index and the full six-model serving bundle (KAN included), built after the site "
            "starts. --queue (bin/setup) records one; --start (bin/run) runs the pending one: on Celery's 'builds' "
            "queue with Redis, in this process otherwise; --run ID runs one here.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--queue", action="store_true", help="record a build for bin/run to start")
        what.add_argument("--start", action="store_true", help="start the pending build, if there is one")
        what.add_argument("--run", type=int, metavar="ID", help="run this build in this process")
        parser.add_argument("--models", default=None, help="with --queue: comma-separated models (default: the six)")
        parser.add_argument("--epochs", type=int, default=2, help="with --queue: training epochs per model")
        parser.add_argument("--no-search-index", action="store_true", help="with --queue: leave the index out")
        parser.add_argument("--threads", type=int, default=1, help="torch threads while building (default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["queue"]:
            row = background_build_queue(models=options["models"].split(",") if options["models"] else None,
                                         epochs=options["epochs"], search_index=not options["no_search_index"])
            self.stdout.write(f"background build {row.pk} queued: {len(row.steps)} steps, starts with bin/run")
            return
        if options["start"] and background_build_pending() is None:
            return  # the usual bin/run: nothing to build, and no torch import
        import torch

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        torch.set_num_threads(max(1, options["threads"]))
        if options["run"] is not None:
            row = background_build_run(build_id=options["run"])
            how = "ran"
        else:
            found, how = background_build_start()
            if found is None:
                return
            row = found
        if how == "queued":
            self.stdout.write(f"background build {row.pk} sent to the Celery 'builds' queue")
        elif row.status == row.Status.FAILED:
            raise CommandError(f"background build {row.pk} failed: {row.error.splitlines()[0]}")
        else:
            self.stdout.write(f"background build {row.pk}: {row.status}")
