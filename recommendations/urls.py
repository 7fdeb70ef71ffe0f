"""Portal pages (namespace ``recommendations``); included before the catalog's pages at the site root."""

from django.urls import path

from . import views

app_name = "recommendations"
urlpatterns = [
    path("", views.home, name="home"),
    path("rows/", views.rows_fragment, name="rows-fragment"),
    path("movies/<int:movie_id>/extras/", views.movie_extras_fragment, name="movie-extras"),
    path("movies/<int:movie_id>/rate/", views.rating_set, name="rating-set"),
    path("movies/<int:movie_id>/watchlist/", views.watchlist_toggle, name="watchlist-toggle"),
    path("undo/", views.undo_last, name="undo"),
    path("history/", views.history, name="history"),
    path("watchlist/", views.watchlist, name="watchlist"),
    path("onboarding/", views.onboarding_page, name="onboarding"),
    path("me/", views.account, name="account"),
]
