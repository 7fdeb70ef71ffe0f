"""manage.py import_tmdb: enrich movies from the TMDB dumps, HetRec directors and the TMDB API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.importers import ImportFileError
from catalog.importers.tmdb import import_tmdb
from catalog.tmdb_client import TMDBClient, TMDBError

SHARED = Path(settings.BASE_DIR).parent / "shared" / "data"
SHIPPED = Path(settings.BASE_DIR) / "data" / "ml-latest-small" / "enrichment"


class Command(BaseCommand):
    help = "Enrich the catalog from TMDB CSV dumps, HetRec 2011 directors and, with --api, the TMDB API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", default=str(SHARED / "tmdb"), help="folder with the TMDB dumps")
        parser.add_argument("--directors", default=str(SHARED / "hetrec2011"), help="HetRec 2011 folder")
        parser.add_argument("--enrichment", default=str(SHIPPED),
                            help="the shipped enrichment table (build_enrichment_table): read instead of the dumps "
                                 "and HetRec when --path is not there")
        parser.add_argument("--api", action="store_true", help="also call the TMDB API (needs TMDB_API_KEY)")
        parser.add_argument("--api-limit", type=int, default=None, help="at most this many API calls")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        path, directors = Path(options["path"]), Path(options["directors"])
        shipped = Path(options["enrichment"])
        use_shipped = not path.is_dir() and shipped.is_dir()  # no dumps here: the shipped table stands in for both
        if use_shipped:
            self.stderr.write(f"--path {path} not found: reading the shipped table {shipped}")
        for folder, label in ((path, "--path"), (directors, "--directors")):
            if not folder.is_dir() and not use_shipped:
                self.stderr.write(f"{label} {folder} not found: skipped")
        if options["api"] and not settings.TMDB_API_KEY:
            raise CommandError("--api needs TMDB_API_KEY in the environment")
        started = time.perf_counter()
        client = TMDBClient(settings.TMDB_API_KEY) if options["api"] else None
        try:
            report = import_tmdb(path=path if path.is_dir() else None,
                                 directors=directors if directors.is_dir() and not use_shipped else None,
                                 client=client, api_limit=options["api_limit"], progress=not options["quiet"],
                                 enrichment=shipped if use_shipped else None)
        except (ImportFileError, TMDBError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if client is not None:
                client.close()
        self.stdout.write(self.style.SUCCESS(f"{report} ({time.perf_counter() - started:.1f} s)"))
