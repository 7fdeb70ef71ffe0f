"""Shared factory_boy factories; other apps add theirs here."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from catalog.models import Genre, Movie, Rating


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def verified_email(self, create: bool, extracted: bool | None, **kwargs: object) -> None:
        """A verified primary address, as after sign-up and verification; ``UserFactory(verified_email=False)``
        leaves the account unverified (no tokens or API keys while verification is mandatory)."""
        if not create or extracted is False or not self.email:
            return
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(user=self, email=self.email.lower(),
                                           defaults={"verified": True, "primary": True})


class GenreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Genre
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Genre {n}")
    slug = factory.LazyAttribute(lambda g: g.name.lower().replace(" ", "-"))


class MovieFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Movie
        skip_postgeneration_save = True

    id = factory.Sequence(lambda n: 900_000 + n)
    title = factory.Sequence(lambda n: f"Movie {n}")
    year = 1999
    overview = "A movie."

    @factory.post_generation
    def genres(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        """MovieFactory(genres=["Action", "Sci-Fi"]) creates/attaches genres by name."""
        if create and extracted:
            self.genres.set([GenreFactory(name=name) for name in extracted])


class RatingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rating

    user = factory.SubFactory(UserFactory)
    movie = factory.SubFactory(MovieFactory)
    value = 4.0
    rated_at = factory.Faker("date_time_this_decade", tzinfo=__import__("datetime").UTC)
    source = "web"


class IssuedApiKey:
    """An API key as its owner saw it once: the row and the full secret (accounts)."""

    def __init__(self, key: object, raw: str) -> None:
        self.key, self.raw = key, raw

    @property
    def headers(self) -> dict[str, str]:
        """Keyword arguments for Django's test client / DRF's APIClient."""
        return {"HTTP_AUTHORIZATION": f"Api-Key {self.raw}"}

    def __str__(self) -> str:
        return self.raw
