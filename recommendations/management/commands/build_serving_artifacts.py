"""`python manage.py build_serving_artifacts [--dataset catalog|ml-100k|ml-latest-small] [--quick]`."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DATASETS = ("catalog", "ml-100k", "ml-latest-small")


class Command(BaseCommand):
    help = ("Train (or reuse) the ensemble models, select DR weights on validation, build the FAISS/TF-IDF/"
            "knowledge-graph indexes and ONNX exports, write the checksummed serving bundle under "
            "ML_ARTIFACTS_DIR/serving, and activate a new EnsembleWeights row.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", default="catalog", choices=DATASETS,
                            help="catalog: the ratings in the database (default); or a named MovieLens dataset")
        parser.add_argument("--models", default=None, help="comma-separated ensemble models (default: the six)")
        parser.add_argument("--quick", action="store_true",
                            help="each model's stored (or default) configuration, trained for at most --epochs "
                                 "epochs (setup/CI)")
        parser.add_argument("--epochs", type=int, default=2, help="training epochs per model with --quick")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        parser.add_argument("--no-onnx", action="store_true", help="skip the Tier 2 ONNX exports")

    def handle(self, *args: Any, **options: Any) -> None:
        import torch

        from ml_core.builds import ENSEMBLE_MODELS, DatasetError, build_serving

        from ... import serving
        from ...serving_services import serving_bundle_register

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        torch.set_num_threads(max(1, options["threads"]))
        start = time.perf_counter()
        try:
            data, metadata = _load(options["dataset"])
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        names = options["models"].split(",") if options["models"] else list(ENSEMBLE_MODELS)
        out = serving.serving_dir()
        summary = build_serving(data, metadata, out, names=[n.strip() for n in names if n.strip()],
                                model_root=Path(settings.ML_ARTIFACTS_DIR) / data.name, quick=options["quick"],
                                seed=options["seed"], onnx=not options["no_onnx"],
                                max_epochs=options["epochs"] if options["quick"] else None)
        registered = serving_bundle_register(bundle_dir=out)  # weights row (activated) and artifact rows
        serving.publish_bundle_version(summary["version"])
        test = summary["metrics"]["test"]
        self.stdout.write(self.style.SUCCESS(
            f"serving bundle {summary['version']} ({data.name}, models {', '.join(summary['models'])}) in "
            f"{time.perf_counter() - start:.0f} s; ensemble test NDCG@10 {test['ndcg@10']:.4f}; "
            f"weights {registered['weights_version']} active"))


def _load(dataset: str) -> tuple[Any, dict[int, dict[str, Any]] | None]:
    """Interactions and movie metadata: from the catalog (selectors) or a named dataset."""
    from catalog.selectors import movie_metadata_map, ratings_as_arrays
    from ml_core.builds import interactions_from_arrays, load_dataset

    from ...serving_selectors import catalog_covers

    metadata = movie_metadata_map()
    if dataset == "catalog":
        users, movies, times, values = ratings_as_arrays()
        if not len(users):
            raise CommandError("the catalog has no ratings yet: import them first (see README), or pass "
                               "--dataset ml-latest-small")
        return interactions_from_arrays(users, movies, times, values, name="catalog"), metadata
    data = load_dataset(dataset)
    known = set(data.item_vocab.raw_ids.tolist())
    # catalog ids are MovieLens movieIds: use its richer metadata when it covers this dataset's movies
    if catalog_covers(movie_ids=known, catalog=metadata):
        return data, {m: v for m, v in metadata.items() if m in known}
    return data, None
