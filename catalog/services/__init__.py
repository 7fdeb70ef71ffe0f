"""Catalog writes: ratings, derived movie fields, the poster file cache (re-exported for other apps)."""

from ..posters import PosterFetchReport, poster_cache_fill
from .movies import movie_rating_stats_refresh, movie_search_text_refresh
from .ratings import rating_delete, rating_upsert, time_window_problem

__all__ = ["PosterFetchReport", "movie_rating_stats_refresh", "movie_search_text_refresh", "poster_cache_fill",
           "rating_delete", "rating_upsert", "time_window_problem"]
