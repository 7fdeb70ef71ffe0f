"""Build a serving bundle from the catalogue's ratings (or a named dataset), register it and tell the workers.

The one implementation behind ``manage.py build_serving_artifacts`` and the background build
(``recommendations/background_build.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings

DATASETS = ("catalog", "ml-100k", "ml-latest-small")  # named; any MovieLens-layout folder path also works


class NoRatings(ValueError):
    """The data to train on is missing (an empty catalogue, an unreadable dataset)."""


def serving_bundle_build(*, dataset: str = "catalog", models: Sequence[str] | None = None, quick: bool = False,
                         epochs: int = 2, seed: int = 42, onnx: bool = True, eval_users: int | None = None,
                         on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train (or reuse) the models, write the bundle under ML_ARTIFACTS_DIR/serving, activate its weights and
    publish its version (every serving worker reloads it on its next request). Returns the build's summary with
    ``weights_version`` and ``seconds`` added. ``dataset``: ``catalog``, a named dataset or a MovieLens-layout
    folder (ml-1m ... ml-32m, ``python -m ml_core synth``). ``eval_users``: validate, select weights and test on a
    seeded sample of that many users (large sets). ``on_step``: see ``ml_core.builds.build_serving``."""
    from ml_core.builds import ENSEMBLE_MODELS, DatasetError, build_serving

    from . import serving
    from .serving_services import serving_bundle_register

    start = time.perf_counter()
    try:
        data, metadata = _load(dataset)
    except DatasetError as exc:
        raise NoRatings(str(exc)) from exc
    names = [n.strip() for n in (models or ENSEMBLE_MODELS) if n.strip()]
    out = serving.serving_dir()
    summary = build_serving(data, metadata, out, names=names, model_root=Path(settings.ML_ARTIFACTS_DIR) / data.name,
                            quick=quick, seed=seed, onnx=onnx, max_epochs=epochs if quick else None,
                            eval_users=eval_users, on_step=on_step)
    registered = serving_bundle_register(bundle_dir=out)  # weights row (activated) and artifact rows
    serving.publish_bundle_version(summary["version"])
    return {**summary, "dataset": data.name, "weights_version": registered["weights_version"],
            "seconds": round(time.perf_counter() - start, 1)}


def _load(dataset: str) -> tuple[Any, dict[int, dict[str, Any]] | None]:
    """Interactions and movie metadata: from the catalog (selectors) or a named dataset."""
    from catalog.selectors import movie_metadata_map, ratings_as_arrays
    from ml_core.builds import interactions_from_arrays, load_dataset

    from .serving_selectors import catalog_covers

    metadata = movie_metadata_map()
    if dataset == "catalog":
        users, movies, times, values = ratings_as_arrays()
        if not len(users):
            raise NoRatings("the catalog has no ratings yet: import them first (see README), or pass "
                            "--dataset ml-latest-small")
        return interactions_from_arrays(users, movies, times, values, name="catalog"), metadata
    data = load_dataset(dataset)
    known = set(data.item_vocab.raw_ids.tolist())
    # catalog ids are MovieLens movieIds: use its richer metadata when it covers this dataset's movies
    if catalog_covers(movie_ids=known, catalog=metadata):
        return data, {m: v for m, v in metadata.items() if m in known}
    return data, None
