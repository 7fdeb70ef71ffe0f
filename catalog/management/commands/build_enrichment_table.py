"""manage.py build_enrichment_table: rebuild data/ml-latest-small/enrichment/ from the TMDB dumps in ../shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.importers import ImportFileError
from catalog.importers.enrichment import enrichment_write

SHARED = Path(settings.BASE_DIR).parent / "shared" / "data"
EMBEDDED = Path(settings.BASE_DIR) / "data" / "ml-latest-small"


class Command(BaseCommand):
    help = ("Write the embedded catalogue's enrichment table (TMDB overview, tagline, release date, runtime, keywords, "
            "votes, poster path, collection; HetRec directors) from the TMDB dumps, for clones without ../shared.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--links", default=str(EMBEDDED / "links.csv"), help="MovieLens links.csv")
        parser.add_argument("--path", default=str(SHARED / "tmdb"), help="folder with the TMDB dumps")
        parser.add_argument("--directors", default=str(SHARED / "hetrec2011"), help="HetRec 2011 folder")
        parser.add_argument("--out", default=str(EMBEDDED / "enrichment"))

    def handle(self, *args: Any, **options: Any) -> None:
        tmdb, links = Path(options["path"]), Path(options["links"])
        if not tmdb.is_dir():
            raise CommandError(f"--path {tmdb} not found: the table is built from the TMDB dumps")
        if not links.is_file():
            raise CommandError(f"--links {links} not found")
        try:
            counts = enrichment_write(links=links, tmdb=tmdb, directors=Path(options["directors"]),
                                      out=Path(options["out"]))
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{options['out']}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())))
