"""`python manage.py train ...`: the same command and options as `python -m ml_core train ...`."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Train, tune on validation and evaluate ml_core models; write artifacts and docs/MODEL_CARDS.md."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from ml_core.builds import add_train_arguments

        add_train_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from ml_core.builds import add_train_arguments, run_train

        names = argparse.ArgumentParser(add_help=False)
        add_train_arguments(names)
        keys = {action.dest for action in names._actions}
        code = run_train(argparse.Namespace(**{k: v for k, v in options.items() if k in keys}))
        if code:
            raise CommandError(f"train failed with exit code {code} (see the error above)", returncode=code)
