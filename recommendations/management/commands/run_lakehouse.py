"""`python manage.py run_lakehouse`: the nightly job now (export, bronze, silver, gold, retrain, reload)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Export new events, build Bronze -> Silver -> Gold on Delta, retrain from Gold, ask serving to reload."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from recommendations.nightly import STEPS

        parser.add_argument(
            "--steps", default=",".join(STEPS), help=f"comma-separated subset, in order (default: {','.join(STEPS)})"
        )
        parser.add_argument("--skip-retrain", action="store_true", help="build the lakehouse only")

    def handle(self, *args: Any, **options: Any) -> None:
        from recommendations.nightly import nightly_run

        steps = [s.strip() for s in options["steps"].split(",") if s.strip()]
        if options["skip_retrain"]:
            steps = [s for s in steps if s not in ("retrain", "reload")]
        try:
            runs = nightly_run(steps=steps)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for run in runs:
            self.stdout.write(f"{run.step:8s} {run.status:10s} {run.rows:>10d} rows {run.seconds or 0:8.1f}s")
