"""`python manage.py build_serving_artifacts [--dataset catalog|ml-100k|ml-latest-small|FOLDER] [--quick]`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...bundle_build import DATASETS, NoRatings, serving_bundle_build


class Command(BaseCommand):
    help = ("Train (or reuse) the ensemble models, select DR weights on validation, build the FAISS/TF-IDF/"
            "knowledge-graph indexes and ONNX exports, write the checksummed serving bundle under "
            "ML_ARTIFACTS_DIR/serving, and activate a new EnsembleWeights row.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", default="catalog",
                            help=f"catalog: the ratings in the database (default); a named dataset ({', '.join(DATASETS[1:])}); "
                                 "or a MovieLens-layout folder (ml-1m ... ml-32m, `python -m ml_core synth`)")
        parser.add_argument("--eval-users", type=int, default=None,
                            help="validate, select the weights and test on a seeded sample of this many users "
                                 "(large sets; default: every user)")
        parser.add_argument("--models", default=None, help="comma-separated ensemble models (default: the six)")
        parser.add_argument("--quick", action="store_true",
                            help="each model's stored (or default) configuration, trained for at most --epochs "
                                 "epochs (setup/CI)")
        parser.add_argument("--epochs", type=int, default=2, help="training epochs per model with --quick")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        parser.add_argument("--no-onnx", action="store_true", help="skip the Tier 2 ONNX exports")
        parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                            help="how much of the build's progress to log (bin/setup: WARNING)")

    def handle(self, *args: Any, **options: Any) -> None:
        import torch

        logging.basicConfig(level=getattr(logging, options["log_level"]),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        torch.set_num_threads(max(1, options["threads"]))
        try:
            summary = serving_bundle_build(dataset=options["dataset"], models=(options["models"] or "").split(",")
                                           if options["models"] else None, quick=options["quick"],
                                           epochs=options["epochs"], seed=options["seed"],
                                           onnx=not options["no_onnx"], eval_users=options["eval_users"])
        except NoRatings as exc:
            raise CommandError(str(exc)) from exc
        test = summary["metrics"]["test"]
        self.stdout.write(self.style.SUCCESS(
            f"serving bundle {summary['version']} ({summary['dataset']}, models {', '.join(summary['models'])}) in "
            f"{summary['seconds']:.0f} s; ensemble test NDCG@10 {test['ndcg@10']:.4f}; "
            f"weights {summary['weights_version']} active"))
