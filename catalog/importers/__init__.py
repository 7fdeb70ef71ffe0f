"""Importers: MovieLens releases and TMDB/HetRec enrichment."""

from .errors import ImportFileError
from .movielens import ImportReport, import_movielens, username_for

__all__ = ["ImportFileError", "ImportReport", "import_movielens", "username_for"]
