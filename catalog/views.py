"""Catalog pages: home, browse, search and movie detail (server-rendered)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import semantic
from .forms import BrowseForm, SearchForm
from .hybrid import DEFAULT_MODE, movie_search
from .selectors import (
    genre_list,
    movie_get,
    movie_list,
    movie_list_in_collection,
    movie_list_top_rated,
    rating_get,
)

ROW_SIZE = 12
PAGE_SIZE = 24


def home(request: HttpRequest) -> HttpResponse:
    rows = [
        ("Most rated", "The movies this community has rated most", list(movie_list(sort="popular")[:ROW_SIZE])),
        ("Highest rated", "Best mean rating, among movies with at least 50 ratings",
         movie_list_top_rated(min_count=50, limit=ROW_SIZE)),
        ("Newest", "The most recent releases in the catalog", list(movie_list(sort="newest")[:ROW_SIZE])),
    ]
    return render(request, "catalog/home.html", {"rows": rows, "genres": genre_list()})


def browse(request: HttpRequest) -> HttpResponse:
    form = BrowseForm(request.GET or None)
    page = Paginator(movie_list(**form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "catalog/browse.html", {"form": form, "page": page})


def search(request: HttpRequest) -> HttpResponse:
    """Hybrid search by default (titles, people and words, plus similar meaning), or keyword or semantic only."""
    form = SearchForm(request.GET or None)
    query = form.cleaned_data.get("q", "").strip() if form.is_valid() else ""
    mode = (form.cleaned_data.get("mode") if form.is_valid() else "") or DEFAULT_MODE
    outcome, error = None, ""
    if query:
        try:
            outcome = movie_search(query=query, mode=mode, limit=PAGE_SIZE)
        except semantic.SearchIndexMissing as exc:
            error = str(exc)
    return render(request, "catalog/search.html",
                  {"form": form, "query": query, "mode": mode, "outcome": outcome, "error": error,
                   "hits": outcome.hits if outcome else []})


def movie_detail(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = movie_get(movie_id=movie_id)
    credits = list(movie.credits.all())
    context = {
        "movie": movie,
        "genres": list(movie.genres.all()),
        "directors": [c.person for c in credits if c.role == "director"],
        "cast": [c for c in credits if c.role == "cast"],
        "collection_movies": movie_list_in_collection(movie=movie),
        "my_rating": rating_get(user=request.user, movie=movie),
    }
    return render(request, "catalog/movie_detail.html", context)
