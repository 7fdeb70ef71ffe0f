"""Catalog API routes, mounted under /v1/."""

from django.urls import path

from .api import MovieDetailApi, MovieListApi, MovieSearchApi, MovieSemanticSearchApi

app_name = "catalog_api"
urlpatterns = [
    path("movies", MovieListApi.as_view(), name="movie-list"),
    path("movies/<int:movie_id>", MovieDetailApi.as_view(), name="movie-detail"),
    path("search", MovieSearchApi.as_view(), name="search"),
    path("search/ai", MovieSemanticSearchApi.as_view(), name="search-ai"),
]
