"""Output shapes of catalog movies for the API (one place, shared by every catalog endpoint)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Movie


class MovieSummarySerializer(serializers.ModelSerializer):
    """A movie in a list."""

    genres = serializers.SerializerMethodField()
    poster_url = serializers.CharField(read_only=True)

    class Meta:
        model = Movie
        fields = ["id", "title", "year", "genres", "poster_url", "rating_mean", "rating_count", "vote_average",
                  "vote_count", "popularity"]

    def get_genres(self, movie: Movie) -> list[str]:
        return [g.name for g in movie.genres.all()]


class CreditSerializer(serializers.Serializer):
    name = serializers.CharField(source="person.name")
    role = serializers.CharField()
    character = serializers.CharField()


class CastMemberSerializer(serializers.Serializer):
    name = serializers.CharField()
    character = serializers.CharField()


class MovieDetailSerializer(MovieSummarySerializer):
    """One movie with everything the catalog knows about it."""

    collection = serializers.CharField(source="collection.name", default=None, allow_null=True,
                                       help_text="the franchise, or null")
    directors = serializers.SerializerMethodField()
    cast = serializers.SerializerMethodField()

    class Meta(MovieSummarySerializer.Meta):
        fields = [*MovieSummarySerializer.Meta.fields, "ml100k_id", "tmdb_id", "imdb_id", "overview", "tagline",
                  "release_date", "runtime", "keywords", "tags", "collection", "directors", "cast", "poster_path", "updated_at"]

    def get_directors(self, movie: Movie) -> list[str]:
        return [c.person.name for c in movie.credits.all() if c.role == "director"]

    @extend_schema_field(CastMemberSerializer(many=True))
    def get_cast(self, movie: Movie) -> list[dict[str, str]]:
        return [{"name": c.person.name, "character": c.character} for c in movie.credits.all() if c.role == "cast"]


class ScoredMovieSerializer(serializers.Serializer):
    """A search hit: the movie, how it matched and its score."""

    score = serializers.FloatField(help_text=(
        "the ranking score, comparable only within one response: in hybrid mode the reciprocal rank fusion score "
        "(the sum over the keyword and semantic rankings that found the movie of 1 / (60 + its rank there)); in "
        "keyword mode the keyword relevance; in semantic mode the cosine similarity of the query and the movie plus a "
        "small prior for well-known movies (at most 0.15)"))
    matched_by = serializers.ListField(
        child=serializers.ChoiceField(choices=["words", "spelling", "meaning"]),
        help_text="what found it: 'words' (the query's words), 'spelling' (a title a typo away), 'meaning' "
                  "(semantic neighbour of the query)")
    movie = MovieSummarySerializer()


class SpellingSerializer(serializers.Serializer):
    typed = serializers.CharField()
    title_word = serializers.CharField()


class SearchResultsSerializer(serializers.Serializer):
    """A search answer: the query, how it was matched, and the relevant hits, best first (at most ``limit``; fewer
    when only a few are relevant)."""

    query = serializers.CharField()
    mode = serializers.ChoiceField(choices=["hybrid", "keyword", "semantic"])
    results = ScoredMovieSerializer(many=True)
    corrections = SpellingSerializer(many=True, help_text="close spellings used for typo matches, if any")
    semantic_available = serializers.BooleanField(
        help_text="false when the semantic index is not built yet: hybrid results are then keyword results only")
