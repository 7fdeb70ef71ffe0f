"""manage.py import_movielens PATH | --download NAME: load a MovieLens release into the catalog."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.importers import ImportFileError, import_movielens
from catalog.importers.download import RELEASES, download_release

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Import a MovieLens release (ml-100k, ml-latest-small, ml-1m, ml-10m/20m/25m; a folder or the official "
            "zip). Idempotent and transactional: a bad file changes nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="release folder or zip file")
        parser.add_argument("--download", choices=sorted(RELEASES), help="fetch the official zip from GroupLens")
        parser.add_argument("--dataset", help="dataset name used for usernames and rating source "
                                              "(default: from the folder name)")
        parser.add_argument("--reference", help="ml-latest-small folder used to map ml-100k titles to movie ids "
                                                "(default: the embedded data/ml-latest-small)")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["path"]) == bool(options["download"]):
            raise CommandError("give either PATH or --download NAME")
        started = time.perf_counter()
        try:
            if options["download"]:
                with tempfile.TemporaryDirectory(prefix="apex-dl-") as tmp:
                    archive = download_release(options["download"], Path(tmp))
                    report = self._import(archive, options)
            else:
                report = self._import(Path(options["path"]), options)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{report} ({time.perf_counter() - started:.1f} s)"))

    def _import(self, path: Path, options: dict[str, Any]):  # noqa: ANN202
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        return import_movielens(path, dataset=options["dataset"],
                                reference=Path(options["reference"]) if options["reference"] else None,
                                progress=not options["quiet"], batch_size=options["batch_size"])
