"""manage.py build_search_index: embed the catalog for semantic search (FAISS, ML_ARTIFACTS_DIR/search/)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog import semantic
from catalog.selectors import movie_metadata_map


class Command(BaseCommand):
    help = "Build the semantic search index: MiniLM embeddings of title, overview, genres and tags in FAISS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        metadata = movie_metadata_map()
        if not metadata:
            raise CommandError("the catalog is empty: run `python manage.py import_movielens data/ml-latest-small`")
        manifest = semantic.build_index(metadata, progress=not options["quiet"])
        self.stdout.write(self.style.SUCCESS(
            f"indexed {manifest['movies']:,} movies in {semantic.index_dir()} ({time.perf_counter() - started:.1f} s)"))
