"""The training entry point for the apps: train models (the CLI's ``train``), retrain from the lakehouse's gold
tables, build a serving bundle, and build the visual (CLIP poster) index. With ``ml_core.serving`` the only
``ml_core`` names Django code imports."""

from .blending import ENSEMBLE_MODELS
from .cli import add_train_arguments, run_train
from .data import DatasetError, interactions_from_arrays, load_dataset
from .gold import interactions_from_gold_snapshot, train_from_gold
from .retrieval.visual import ClipEncoder, build_visual_index
from .serving_build import build_serving, metadata_from_interactions

__all__ = ["ENSEMBLE_MODELS", "ClipEncoder", "DatasetError", "add_train_arguments", "build_serving",
           "build_visual_index", "interactions_from_arrays", "interactions_from_gold_snapshot", "load_dataset",
           "metadata_from_interactions", "run_train", "train_from_gold"]
