"""Catalog writes: ratings and derived movie fields (re-exported for other apps)."""

from .movies import movie_rating_stats_refresh, movie_search_text_refresh
from .ratings import rating_delete, rating_upsert, time_window_problem

__all__ = ["movie_rating_stats_refresh", "movie_search_text_refresh", "rating_delete", "rating_upsert",
           "time_window_problem"]
