"""`python manage.py build_visual_index --model openai/clip-vit-base-patch32 [--limit N]` (docs/VISUAL.md)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Fetch the catalogue's posters from TMDB's image CDN into POSTER_CACHE_DIR (cached, resumable, "
            "rate-limited), embed them with a CLIP image encoder, and write the checksummed FAISS poster index to "
            "VISUAL_INDEX_DIR (the 'Looks like this' row, /v1/recommendations/id/<id>/visual, /v1/search/visual).")
    stealth_options = ("transport",)  # tests pass an httpx transport standing in for the CDN

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True,
                            help="a local directory with a saved CLIP (save_pretrained), or a Hugging Face hub id "
                                 "such as openai/clip-vit-base-patch32 (downloaded once into the HF cache)")
        parser.add_argument("--offline", action="store_true",
                            help="never download weights: a hub id must already be in the local HF cache")
        parser.add_argument("--limit", type=int, default=None, help="index only the first N movies with posters")
        parser.add_argument("--batch-size", type=int, default=32, help="posters per CLIP forward pass")
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        import torch

        from ml_core.serving import ArtifactError

        from ...visual import visual_index_build, visual_index_dir

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        torch.set_num_threads(max(1, options["threads"]))
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        offline = options["offline"] or Path(options["model"]).is_dir()
        start = time.perf_counter()
        try:
            manifest, report = visual_index_build(model=options["model"], offline=offline, limit=options["limit"],
                                                  batch_size=options["batch_size"],
                                                  transport=options.get("transport"))
        except (ArtifactError, OSError) as exc:  # weights that do not load, no poster to index, a full disk
            raise CommandError(str(exc)) from exc
        metrics = manifest["metrics"]
        seconds = time.perf_counter() - start
        self.stdout.write(self.style.SUCCESS(
            f"visual index {manifest['version']}: {metrics['posters']} posters x {metrics['dims']} dims from "
            f"{metrics['model']} in {seconds:.1f} s (embedding {metrics['embed_seconds']:.1f} s) -> "
            f"{visual_index_dir()}"))
        self.stdout.write(f"posters: {report.fetched} fetched, {report.cached} already cached, "
                          f"{len(report.missing)} not on the CDN, {len(report.failed)} failed, "
                          f"{len(report.invalid)} with an invalid path, {metrics['undecodable']} undecodable")
