"""Catalog API (public, read-only): movies, movie detail, keyword and semantic search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apex_site.client_ip import public_model_throttles
from apex_site.params import QueryParamsSerializer
from apex_site.schema import errors

from . import semantic
from .hybrid import DEFAULT_MODE, MODES, SearchOutcome, movie_search
from .models import Movie
from .selectors import SORTS, movie_get, movie_list
from .serializers import MovieDetailSerializer, MovieSummarySerializer, ScoredMovieSerializer, SearchResultsSerializer

_Model = TypeVar("_Model", bound=Model)
_Row = TypeVar("_Row")


class CatalogPagination(PageNumberPagination):
    """Page numbers; a ``page`` or ``page_size`` that is sent must be a positive integer (400, not ignored)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset: QuerySet[_Model, _Row] | Sequence[_Row], request: Request,
                          view: APIView | None = None) -> list[_Row] | None:
        bad = {name: ["Send a positive integer (or leave the parameter out)."]
               for name in (self.page_query_param, self.page_size_query_param)
               if name in request.query_params and not _positive_int(request.query_params[name])}
        if bad:
            raise serializers.ValidationError(bad)
        return super().paginate_queryset(queryset, request, view)


def _positive_int(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) > 0


class MovieFilterSerializer(QueryParamsSerializer):
    genre = serializers.CharField(required=False, help_text="genre name or slug, e.g. Sci-Fi or sci-fi")
    year = serializers.IntegerField(required=False, min_value=1870, max_value=2100)
    year_min = serializers.IntegerField(required=False, min_value=1870, max_value=2100,
                                        help_text="released in or after; not after year_max (400)")
    year_max = serializers.IntegerField(required=False, min_value=1870, max_value=2100,
                                        help_text="released in or before; not before year_min (400)")
    text = serializers.CharField(required=False, max_length=200, help_text="words in the title")
    min_rating = serializers.FloatField(required=False, min_value=0.5, max_value=5.0,
                                        help_text="minimum mean rating in this catalog")
    sort = serializers.ChoiceField(choices=sorted(SORTS), required=False, default="popular")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("year_min") and attrs.get("year_max") and attrs["year_min"] > attrs["year_max"]:
            raise serializers.ValidationError({"year_min": "year_min must not be after year_max"})
        return attrs


class SearchQuerySerializer(QueryParamsSerializer):
    q = serializers.CharField(max_length=300, help_text="what to look for (not blank)")
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100,
                                     help_text="at most this many results; fewer when only a few are relevant")


class HybridSearchQuerySerializer(SearchQuerySerializer):
    mode = serializers.ChoiceField(
        choices=list(MODES), required=False, default=DEFAULT_MODE,
        help_text="hybrid (default): keyword and semantic rankings fused by reciprocal rank fusion; keyword: words "
                  "in titles, people, keywords and overviews, titles a typo away included; semantic: meaning only")


def _search_response(outcome: SearchOutcome) -> Response:
    return Response({
        "query": outcome.query, "mode": outcome.mode,
        "results": ScoredMovieSerializer([{"score": h.score, "matched_by": list(h.matched_by), "movie": h.movie}
                                          for h in outcome.hits], many=True).data,
        "corrections": [{"typed": typed, "title_word": word} for typed, word in outcome.corrections],
        "semantic_available": outcome.mode == "keyword" or not outcome.semantic_error,
    })


class MovieListApi(generics.ListAPIView):
    """Movies, filtered and paginated."""

    permission_classes = [AllowAny]
    serializer_class = MovieSummarySerializer
    pagination_class = CatalogPagination

    def get_queryset(self) -> QuerySet[Movie]:
        filters = MovieFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return movie_list(**filters.validated_data)

    @extend_schema(parameters=[MovieFilterSerializer], summary="List movies")
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class MovieDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: MovieDetailSerializer, **errors(404, descriptions={404: "unknown movie"})},
                   summary="One movie")
    def get(self, request: Request, movie_id: int) -> Response:
        return Response(MovieDetailSerializer(movie_get(movie_id=movie_id)).data)


class MovieSearchApi(APIView):
    """Movies for a query, best first. By default (mode=hybrid) the keyword ranking (words in titles, people,
    keywords and overviews; titles a typo away, as "matirx" for The Matrix) and the semantic ranking (plots,
    keywords and genres close in meaning) are fused by reciprocal rank fusion, each cut to its relevant part
    first: fewer than `limit` results come back when only a few are relevant. Each result says what matched it."""

    permission_classes = [AllowAny]
    # hybrid (the default) runs the sentence-embedding model too: the same public-model budget as /v1/search/ai
    throttle_classes = public_model_throttles()

    @extend_schema(parameters=[HybridSearchQuerySerializer],
                   responses={200: SearchResultsSerializer,
                              **errors(503, descriptions={503: "mode=semantic and the index is not built"})},
                   summary="Search: keyword and semantic rankings fused (default), or either alone")
    def get(self, request: Request) -> Response:
        params = HybridSearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            outcome = movie_search(query=params.validated_data["q"], mode=params.validated_data["mode"],
                                   limit=params.validated_data["limit"])
        except semantic.SearchIndexMissing as exc:  # mode=semantic only: hybrid falls back to keyword
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return _search_response(outcome)


class MovieSemanticSearchApi(APIView):
    """Movies close in meaning to the query (their plot, keywords and genres; the title counts little), best first,
    cut to the relevant ones. The same as /v1/search with mode=semantic."""

    permission_classes = [AllowAny]
    # runs a sentence-embedding model: anonymous callers get the tighter public-model budget too
    throttle_classes = public_model_throttles()

    @extend_schema(parameters=[SearchQuerySerializer],
                   responses={200: SearchResultsSerializer, **errors(503, descriptions={503: "index not built"})},
                   summary="Semantic search only (MiniLM embeddings of plot, keywords and genres + FAISS)")
    def get(self, request: Request) -> Response:
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            outcome = movie_search(query=params.validated_data["q"], mode="semantic",
                                   limit=params.validated_data["limit"])
        except semantic.SearchIndexMissing as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return _search_response(outcome)
