"""Catalog admin: movies with their credits, genres, people, collections and ratings."""

from __future__ import annotations

from django.contrib import admin

from apex_site.admin_base import BoundedCountPaginator

from .models import Collection, Credit, Genre, Movie, Person, Rating


class CreditInline(admin.TabularInline):
    model = Credit
    extra = 0
    autocomplete_fields = ["person"]
    fields = ["person", "role", "character", "order"]


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "year", "rating_count", "rating_mean", "vote_average", "tmdb_id", "updated_at"]
    list_filter = ["genres", "year"]
    search_fields = ["title", "imdb_id", "=id", "=tmdb_id", "=ml100k_id"]
    filter_horizontal = ["genres"]
    autocomplete_fields = ["collection"]
    readonly_fields = ["rating_count", "rating_mean", "search_text", "created_at", "updated_at"]
    inlines = [CreditInline]
    list_per_page = 50
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["id", "name"]
    search_fields = ["name"]


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "tmdb_id"]
    search_fields = ["name", "external_id"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["user", "movie", "value", "rated_at", "source"]
    list_filter = ["source", "value"]
    search_fields = ["user__username", "movie__title"]
    raw_id_fields = ["user", "movie"]
    list_select_related = ["user", "movie"]
    date_hierarchy = "rated_at"
    show_full_result_count = False
    paginator = BoundedCountPaginator  # 100k+ rows: never a full COUNT(*) per page
