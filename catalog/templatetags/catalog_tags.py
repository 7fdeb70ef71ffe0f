"""Template helpers for catalog pages: posters with a placeholder fallback, star display."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from ..models import Movie
from ..posters import HEIGHT, WIDTH, placeholder_data_uri

register = template.Library()


@register.simple_tag
def movie_poster(movie: Movie, css_class: str = "poster") -> str:
    """<img> of the TMDB poster that falls back to the generated placeholder on error, or the placeholder."""
    fallback = placeholder_data_uri(title=movie.title, year=movie.year, seed=movie.id)
    alt = f"Poster of {movie.title}" + (f" ({movie.year})" if movie.year else "")
    if movie.poster_url:
        return format_html(
            '<img class="{}" src="{}" alt="{}" width="{}" height="{}" loading="lazy" decoding="async" '
            'data-fallback="{}">',  # static/js/apex.js swaps in the fallback on error (no inline handler: CSP)
            css_class, movie.poster_url, alt, WIDTH, HEIGHT, fallback)
    return format_html('<img class="{} placeholder" src="{}" alt="{}" width="{}" height="{}">',
                       css_class, fallback, alt, WIDTH, HEIGHT)


@register.filter
def stars(value: float | None) -> str:
    """4.2 -> '4.2 ★' (empty when unrated)."""
    return "" if value is None else f"{value:.1f} ★"


@register.filter
def runtime(minutes: int | None) -> str:
    """112 -> '1 h 52 min', 45 -> '45 min', 120 -> '2 h' (empty when unknown)."""
    if not minutes:
        return ""
    hours, rest = divmod(int(minutes), 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: object) -> str:
    """The current query string with some parameters replaced (for pagination links)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params[key] = value
    return params.urlencode()
