"""APEX ml_core: models, the evaluation protocol, training and artifacts (plain Python + torch, no Django)."""

from .data import Interactions, Vocabulary, interactions_from_arrays, load_dataset
from .interface import FitOptions, FitReport, Recommender, UserContext

__all__ = ["FitOptions", "FitReport", "Interactions", "Recommender", "UserContext", "Vocabulary",
           "interactions_from_arrays", "load_dataset"]
