"""Filter forms for the catalog pages."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from .selectors import SORTS, genre_list

RATING_CHOICES = [("", "Any rating"), ("3", "3+ ★"), ("3.5", "3.5+ ★"), ("4", "4+ ★"), ("4.5", "4.5+ ★")]
SORT_LABELS = {"popular": "Most rated", "rating": "Highest rated", "newest": "Newest", "title": "Title A–Z"}


class BrowseForm(forms.Form):
    """Browse filters: genre, year range, minimum mean rating, sort order."""

    genre = forms.ChoiceField(required=False)
    year_min = forms.IntegerField(required=False, min_value=1870, max_value=2100, label="From year")
    year_max = forms.IntegerField(required=False, min_value=1870, max_value=2100, label="To year")
    min_rating = forms.TypedChoiceField(required=False, choices=RATING_CHOICES, coerce=float, empty_value=None,
                                        label="Rating")
    sort = forms.ChoiceField(required=False, choices=[(k, SORT_LABELS[k]) for k in SORTS])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        genres = genre_list()
        cast(forms.ChoiceField, self.fields["genre"]).choices = [("", "All genres")] + [(g.slug, g.name) for g in genres]
        wanted = self.data.get("genre") if self.is_bound else None
        if wanted:  # "Sci-Fi", "sci-fi", "SCI-FI": a genre's name or slug in any case selects it
            slugs = {key.lower(): g.slug for g in genres for key in (g.slug, g.name)}
            slug = slugs.get(str(wanted).strip().lower(), wanted)
            self.data = {**{key: self.data.get(key) for key in self.data}, "genre": slug}  # every field is single-valued

    def filters(self) -> dict[str, Any]:
        """The cleaned filters for selectors.movie_list (empty when the form is invalid)."""
        if not self.is_valid():
            return {}
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        data.setdefault("sort", "popular")
        return data


SEARCH_MODE_LABELS = {"hybrid": "Best match", "keyword": "Words only", "semantic": "Meaning only"}


class SearchForm(forms.Form):
    """The search box: hybrid (words and meaning) unless the visitor picks one side."""

    q = forms.CharField(required=False, max_length=300, label="Search")
    mode = forms.ChoiceField(required=False, choices=list(SEARCH_MODE_LABELS.items()))
