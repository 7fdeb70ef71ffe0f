"""Poster images: the TMDB URL when there is a poster path, else a generated SVG placeholder with title and year."""

from __future__ import annotations

import textwrap
from urllib.parse import quote

from django.utils.html import escape

WIDTH, HEIGHT = 342, 513


def placeholder_svg(*, title: str, year: int | None, seed: int) -> str:
    """A 2:3 SVG poster with the title (wrapped) and year on a gradient picked from the movie id."""
    hue = (seed * 47) % 360
    lines = textwrap.wrap(title, width=16)[:5] or [""]
    first_y = HEIGHT / 2 - (len(lines) - 1) * 18
    text = "".join(f'<tspan x="50%" y="{first_y + i * 36:.0f}">{escape(line)}</tspan>' for i, line in enumerate(lines))
    font = 'text-anchor="middle" font-family="Georgia,serif"'
    year_text = (f'<text x="50%" y="{first_y + len(lines) * 36 + 10:.0f}" {font} font-size="22" fill="#f5c518">'
                 f"{year}</text>") if year else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},45%,28%)"/><stop offset="1" stop-color="hsl({hue},50%,10%)"/>'
        f'</linearGradient></defs><rect width="100%" height="100%" fill="url(#g)"/>'
        f'<text {font} font-size="28" fill="#fff">{text}</text>{year_text}</svg>'
    )


def placeholder_data_uri(*, title: str, year: int | None, seed: int) -> str:
    """The placeholder as a data: URI for <img src> and onerror fallbacks."""
    return "data:image/svg+xml;charset=utf-8," + quote(placeholder_svg(title=title, year=year, seed=seed))
