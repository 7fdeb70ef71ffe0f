"""Catalog pages."""

from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("movies/", views.browse, name="movie-list"),
    path("movies/<int:movie_id>/", views.movie_detail, name="movie-detail"),
    path("search/", views.search, name="search"),
]
