"""Catalog models: movies and their metadata, people and credits, and users' ratings."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

# Movies that exist only in ml-100k (no exact-title match in the shared MovieLens id space)
# get ids from this offset upwards: ML100K_ID_OFFSET + the ml-100k item id.
ML100K_ID_OFFSET = 10_000_000


class Genre(models.Model):
    """A MovieLens genre (Action, Sci-Fi, ...)."""

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Collection(models.Model):
    """A TMDB collection (franchise), e.g. "Toy Story Collection"."""

    id = models.IntegerField(primary_key=True, help_text="TMDB collection id")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    """A director or cast member."""

    name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=128, unique=True,
                                   help_text="Stable source key: 'hetrec:<directorID>' or 'tmdb:<person id>'")
    tmdb_id = models.IntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name


class Movie(models.Model):
    """A movie; the primary key is the MovieLens movieId (the id space of ml-latest-small/ml-1m/ml-25m)."""

    id = models.IntegerField(primary_key=True, help_text="MovieLens movieId (ml-100k-only items: 10,000,000 + item id)")
    ml100k_id = models.IntegerField(null=True, blank=True, unique=True, help_text="ml-100k item id, when known")
    tmdb_id = models.IntegerField(null=True, blank=True, db_index=True)
    imdb_id = models.CharField(max_length=16, blank=True, default="", help_text="IMDb id as 'tt0114709'")
    title = models.CharField(max_length=255, db_index=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    overview = models.TextField(blank=True, default="")
    tagline = models.CharField(max_length=255, blank=True, default="", help_text="TMDB tagline")
    release_date = models.DateField(null=True, blank=True, help_text="first release (TMDB)")
    runtime = models.PositiveSmallIntegerField(null=True, blank=True, help_text="minutes")
    genres = models.ManyToManyField(Genre, related_name="movies", blank=True)
    keywords = models.JSONField(default=list, blank=True, help_text="TMDB keywords")
    tags = models.JSONField(default=list, blank=True, help_text="MovieLens user tags, most frequent first")
    collection = models.ForeignKey(Collection, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="movies")
    people = models.ManyToManyField(Person, through="Credit", related_name="movies", blank=True)
    vote_average = models.FloatField(null=True, blank=True, help_text="TMDB vote average (0-10)")
    vote_count = models.IntegerField(null=True, blank=True, help_text="TMDB vote count")
    popularity = models.FloatField(null=True, blank=True, help_text="TMDB popularity")
    poster_path = models.CharField(max_length=128, blank=True, default="")
    rating_count = models.IntegerField(default=0, db_index=True, help_text="ratings in this catalog")
    rating_mean = models.FloatField(null=True, blank=True, db_index=True, help_text="mean rating in this catalog")
    search_text = models.TextField(blank=True, default="",
                                   help_text="genres, director, keywords and tags, for keyword search")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:movie-detail", args=[self.id])

    @property
    def poster_url(self) -> str:
        """The TMDB w342 poster URL, or "" when there is no poster path."""
        return f"https://image.tmdb.org/t/p/w342{self.poster_path}" if self.poster_path else ""


class Credit(models.Model):
    """A person's role on a movie."""

    class Role(models.TextChoices):
        DIRECTOR = "director", "Director"
        CAST = "cast", "Cast"

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="credits")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="credits")
    role = models.CharField(max_length=16, choices=Role.choices)
    character = models.CharField(max_length=255, blank=True, default="")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["movie_id", "role", "order"]
        constraints = [models.UniqueConstraint(fields=["movie", "person", "role"], name="credit_unique_role")]

    def __str__(self) -> str:
        return f"{self.person} ({self.role}) in {self.movie_id}"


class Rating(models.Model):
    """One user's rating of one movie (0.5-5 stars); a second rating replaces the first."""

    # no index of its own: (user, rated_at) and the unique (user, movie) both lead with it
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings",
                             db_index=False)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="ratings")
    value = models.FloatField(validators=[MinValueValidator(0.5), MaxValueValidator(5.0)])
    rated_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=32, default="web", db_index=True,
                              help_text="dataset name (ml-latest-small, ml-100k, ...) or web/api")

    class Meta:
        ordering = ["user_id", "rated_at", "movie_id"]
        # a member's history (newest first, the history cache and the portal) and the admin list's ordering
        indexes = [models.Index(fields=["user", "rated_at"], name="rating_user_time")]
        constraints = [
            models.UniqueConstraint(fields=["user", "movie"], name="rating_unique_user_movie"),
            models.CheckConstraint(condition=models.Q(value__gte=0.5) & models.Q(value__lte=5.0),
                                   name="rating_value_range"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} rated {self.movie_id}: {self.value}"
