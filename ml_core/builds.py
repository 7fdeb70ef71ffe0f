"""The training entry point for the apps: train models (the CLI's ``train``), retrain from the lakehouse's gold
tables, build a serving bundle, build the visual (CLIP poster) index, the demographic fairness report, and re-select
the blend weights by DR on served lists (the nightly job). With ``ml_core.serving`` the only ``ml_core`` names Django
code imports."""

from .blending import ENSEMBLE_MODELS
from .cli import add_train_arguments, run_train
from .data import DatasetError, interactions_from_arrays, load_dataset
from .demographics import attach_user_attributes
from .experiments.selection import LoggedList, WeightChoice, estimate_policies_from_logs, select_weights_from_logs
from .fairness import NoGroupsError, fairness_report
from .gold import interactions_from_gold_snapshot, train_from_gold
from .retrieval.visual import ClipEncoder, build_visual_index
from .serving_build import build_serving, metadata_from_interactions

__all__ = ["ENSEMBLE_MODELS", "ClipEncoder", "DatasetError", "LoggedList", "NoGroupsError", "WeightChoice",
           "add_train_arguments",
           "attach_user_attributes", "build_serving", "build_visual_index", "estimate_policies_from_logs",
           "fairness_report",
           "interactions_from_arrays", "interactions_from_gold_snapshot", "load_dataset",
           "metadata_from_interactions", "run_train", "select_weights_from_logs", "train_from_gold"]
