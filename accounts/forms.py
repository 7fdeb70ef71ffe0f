"""Forms for the account pages."""

from __future__ import annotations

from django import forms


class FavouriteGenresForm(forms.Form):
    favourite_genres = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: object, genre_names: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["favourite_genres"].choices = [(name, name) for name in genre_names]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. 'mobile app'")


class OnboardingForm(FavouriteGenresForm):
    liked_movies = forms.TypedMultipleChoiceField(required=False, coerce=int, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: object, movie_ids: list[int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["liked_movies"].choices = [(i, str(i)) for i in movie_ids]
