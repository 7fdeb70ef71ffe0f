"""Every trainable model by its lowercase name (a plain dict, so "go to definition" works)."""

from __future__ import annotations

from .models.ease import EASE
from .models.itemknn import ItemKNN
from .models.lightgcn import LightGCN
from .models.popularity import Popularity
from .models.sasrec import SASRec, SASRecBCE

MODELS: dict[str, type] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "sasrec": SASRec,
    "sasrec_bce": SASRecBCE,
    "lightgcn": LightGCN,
}
