"""Recommendation APIs (DRF): user, item, enriched, knowledge-graph and visually similar lists; text-to-poster
search; the caller's live feature state; metrics; artifact health and reloads."""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_get, user_signed_in
from apex_site.client_ip import public_model_throttles  # per real client address (TRUSTED_PROXIES)
from apex_site.params import QueryParamsSerializer
from apex_site.schema import errors
from billing.quota import QuotaMixin
from catalog.selectors import movie_get, movie_list_by_ids
from events.selectors import event_features_for

from . import serving, visual
from .llm_explain import llm_enabled
from .online.checkpoints import checkpoint_latest_id
from .serializers import (
    ArtifactsHealthSerializer,
    ArtifactsReloadedSerializer,
    EnrichedRecommendationsSerializer,
    EventFeaturesSerializer,
    KnowledgeGraphSerializer,
    MovieRecommendationsSerializer,
    OfflineMetricsSerializer,
    UserExplanationsSerializer,
    UserRecommendationsSerializer,
    VisualRecommendationsSerializer,
    VisualSearchResultsSerializer,
    WeightsPublishedSerializer,
)
from .serving_selectors import artifacts_health, ensemble_weights_active, offline_metrics_latest

log = logging.getLogger(__name__)


class ListParams(QueryParamsSerializer):
    """Query parameters shared by the recommendation lists."""

    k = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="list length")
    genre = serializers.CharField(required=False, max_length=64, help_text="only this genre (name, case-insensitive)")
    year = serializers.IntegerField(required=False, min_value=1870, max_value=2100, help_text="only this release year")
    year_min = serializers.IntegerField(required=False, min_value=1870, max_value=2100,
                                        help_text="released in or after; not after year_max (400)")
    year_max = serializers.IntegerField(required=False, min_value=1870, max_value=2100,
                                        help_text="released in or before; not before year_min (400)")
    explain = serializers.BooleanField(default=False, help_text="per-item sources, model contributions, boosts "
                                                                "and a sentence")
    fairness = serializers.BooleanField(default=False, help_text="attach the per-list fairness audit")
    candidates = serializers.IntegerField(min_value=10, max_value=1000, default=100, help_text="retrieval pool size")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("year_min") and attrs.get("year_max") and attrs["year_min"] > attrs["year_max"]:
            raise serializers.ValidationError({"year_min": "year_min must not be after year_max"})
        return attrs


class KnowledgeGraphParams(QueryParamsSerializer):
    k = serializers.IntegerField(min_value=1, max_value=50, default=10, help_text="neighbours per relation")


LIST_PARAMS = [ListParams]
# public endpoints that run a model: the burst limit, plus one tighter budget per address for anonymous callers
PUBLIC_MODEL_THROTTLES = public_model_throttles()
MAX_EXPLAINED = 100
LLM_OFF = ("LLM explanations are off on this server (the operator sets LLM_BASE_URL and LLM_MODEL to turn them on; "
           "docs/LLM_EXPLANATIONS.md): the engine's template sentences are the explanations")
ENGINE_DOWN = {503: "the serving artifacts are not loaded (build or reload them)"}
NOT_SERVED = {404: "unknown movie, or one not in the serving catalogue yet"}


# One bound instance validates every request: building a serializer deep-copies all its fields each time.
# ``run_validation`` keeps no state on the instance, so threads can share it.
_LIST_PARAMS = ListParams()
_LIST_PARAMS.fields  # noqa: B018 - bind the fields once, before any request thread reads them


def _params(request: Request) -> dict[str, Any]:
    p = _LIST_PARAMS.run_validation(request.query_params)  # ValidationError (400) naming each bad parameter
    return {"k": p["k"], "genre": p.get("genre"), "year": p.get("year"), "year_min": p.get("year_min"),
            "year_max": p.get("year_max"), "explain": p["explain"], "audit": p["fairness"],
            "n_candidates": p["candidates"]}


def _unavailable(exc: Exception) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


class UserRecommendationsApi(QuotaMixin, APIView):
    """A user's personalised list: your own (staff: anyone's; an unknown user gets the cold-start list)."""

    permission_classes = [IsAuthenticated]
    quota_kind = "recommendations"

    @extend_schema(parameters=LIST_PARAMS, responses={200: UserRecommendationsSerializer,
                                                      **errors(503, descriptions=ENGINE_DOWN)},
                   summary="Personalised recommendations for a user (cold-start list when unknown)")
    def get(self, request: Request, user_id: int) -> Response:
        if user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied("You may read only your own recommendations.")
        params = _params(request)
        target = request.user if user_id == request.user.pk else user_get(user_id=user_id)
        try:
            payload = serving.recommend_user(user=target, user_id=user_id, narrate=params["explain"], **params)
        except serving.EngineUnavailable as exc:
            return _unavailable(exc)
        if target is not None and target.pk == request.user.pk and payload["items"]:
            _log_impressions(request, payload)
        return Response(payload)


class ExplanationParams(QueryParamsSerializer):
    movie_ids = serializers.CharField(max_length=1200, help_text="comma-separated ids of movies the portal showed "
                                                                 f"this member (at most {MAX_EXPLAINED})")

    def validate_movie_ids(self, value: str) -> list[int]:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or len(parts) > MAX_EXPLAINED or not all(p.isdigit() for p in parts):
            raise serializers.ValidationError(f"give 1 to {MAX_EXPLAINED} movie ids separated by commas")
        return [int(p) for p in parts]


class UserExplanationsApi(APIView):
    """LLM sentences for the picks the portal just showed a member (the page fills them in after it renders)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[ExplanationParams], responses={200: UserExplanationsSerializer, **errors(400)},
                   summary="LLM explanations of the movies the portal showed you (empty while not configured)")
    def get(self, request: Request, user_id: int) -> Response:
        if user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied("You may read only your own explanations.")
        movie_ids = ExplanationParams(data=request.query_params)
        movie_ids.is_valid(raise_exception=True)
        if not llm_enabled():  # a feature switched off, not an outage: the templates are the explanations
            return Response({"user_id": user_id, "enabled": False, "detail": LLM_OFF, "items": []})
        items = serving.explanations_for_user(user_id=user_id, movie_ids=movie_ids.validated_data["movie_ids"])
        return Response({"user_id": user_id, "enabled": True, "items": items})


def _log_impressions(request: Request, payload: dict[str, Any]) -> None:
    """Log the served list with its propensities (events app): one XADD, stored from the stream by beat."""
    from events.services import impression_enqueue

    items = payload["items"]
    try:
        impression_enqueue(user=user_signed_in(request=request), movie_ids=[i["movie_id"] for i in items],
                           propensities=[i["propensity"] for i in items], positions=[i["position"] for i in items],
                           policy_version=payload["weights_version"], request_id=payload["request_id"],
                           arm_id=(payload.get("arm") or {}).get("arm_id"))
    except Exception:  # noqa: BLE001 - a logging failure must not fail the recommendation
        log.exception("impression logging failed for request %s", payload["request_id"])


class _MovieApi(QuotaMixin, APIView):
    permission_classes = [AllowAny]
    throttle_classes = PUBLIC_MODEL_THROTTLES
    quota_kind = "recommendations"

    def _movie_list(self, request: Request, movie_id: int) -> dict[str, Any]:
        movie_get(movie_id=movie_id)  # Http404 for a movie the catalog does not know
        try:
            return serving.recommend_movie(movie_id=movie_id, **_params(request))
        except KeyError as exc:
            raise NotFound(f"Movie {movie_id} is not in the serving catalogue yet (rebuild the artifacts).") from exc


class MovieRecommendationsApi(_MovieApi):
    @extend_schema(parameters=LIST_PARAMS, summary="Movies to watch after this one",
                   responses={200: MovieRecommendationsSerializer,
                              **errors(404, 503, descriptions={**NOT_SERVED, **ENGINE_DOWN})})
    def get(self, request: Request, movie_id: int) -> Response:
        try:
            return Response(self._movie_list(request, movie_id))
        except serving.EngineUnavailable as exc:
            return _unavailable(exc)


class MovieRecommendationsEnrichedApi(_MovieApi):
    @extend_schema(parameters=LIST_PARAMS, responses={200: EnrichedRecommendationsSerializer,
                                                      **errors(404, 503, descriptions={**NOT_SERVED, **ENGINE_DOWN})},
                   summary="Movies to watch after this one, with catalog metadata (overview, poster, directors)")
    def get(self, request: Request, movie_id: int) -> Response:
        try:
            payload = self._movie_list(request, movie_id)
        except serving.EngineUnavailable as exc:
            return _unavailable(exc)
        movies = {m.id: m for m in movie_list_by_ids(movie_ids=[i["movie_id"] for i in payload["items"]])}
        for item in payload["items"]:
            movie = movies.get(item["movie_id"])
            if movie is not None:
                item.update(overview=movie.overview, poster_path=movie.poster_path, runtime=movie.runtime,
                            vote_average=movie.vote_average, rating_mean=movie.rating_mean,
                            rating_count=movie.rating_count, collection=movie.collection.name
                            if movie.collection is not None else None, genres=[g.name for g in movie.genres.all()])
        return Response(payload)


class KnowledgeGraphApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = PUBLIC_MODEL_THROTTLES

    @extend_schema(parameters=[KnowledgeGraphParams], summary="Franchise, director, genre and era neighbours of a movie",
                   responses={200: KnowledgeGraphSerializer,
                              **errors(404, 503, descriptions={**NOT_SERVED, **ENGINE_DOWN})})
    def get(self, request: Request, movie_id: int) -> Response:
        movie_get(movie_id=movie_id)
        params = KnowledgeGraphParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            return Response(serving.knowledge_graph_for(movie_id=movie_id, k=params.validated_data["k"]))
        except KeyError as exc:
            raise NotFound(f"Movie {movie_id} is not in the serving catalogue yet.") from exc
        except serving.EngineUnavailable as exc:
            return _unavailable(exc)


class VisualParams(QueryParamsSerializer):
    k = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="list length")


class VisualSearchParams(QueryParamsSerializer):
    q = serializers.CharField(max_length=300, help_text="what the poster should look like (not blank)")
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


VISUAL_DOWN = {503: "no visual (CLIP poster) index has been built on this server"}


def _visual_unavailable(exc: Exception) -> Response:
    return Response({"detail": str(exc), "code": "visual_index_unavailable"},
                    status=status.HTTP_503_SERVICE_UNAVAILABLE)


class MovieVisualApi(QuotaMixin, APIView):
    """Movies whose posters look like this one's (CLIP image embeddings, FAISS)."""

    permission_classes = [AllowAny]
    throttle_classes = PUBLIC_MODEL_THROTTLES
    quota_kind = "recommendations"

    @extend_schema(parameters=[VisualParams], summary="Visually similar movies (CLIP poster embeddings)",
                   responses={200: VisualRecommendationsSerializer, **errors(404, 503, descriptions={
                       404: "unknown movie, or one without a poster in the visual index", **VISUAL_DOWN})})
    def get(self, request: Request, movie_id: int) -> Response:
        movie_get(movie_id=movie_id)  # Http404 for a movie the catalog does not know
        params = VisualParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            return Response(visual.visual_similar(movie_id=movie_id, k=params.validated_data["k"]))
        except visual.VisualUnavailable as exc:
            return _visual_unavailable(exc)
        except KeyError as exc:
            raise NotFound(f"Movie {movie_id} has no poster in the visual index (no poster path, or added "
                           "since the index was built).") from exc


class VisualSearchApi(APIView):
    """Text-to-poster search: CLIP's text tower over the visual index."""

    permission_classes = [AllowAny]
    throttle_classes = PUBLIC_MODEL_THROTTLES

    @extend_schema(parameters=[VisualSearchParams], summary="Posters that look like a description (CLIP)",
                   responses={200: VisualSearchResultsSerializer, **errors(503, descriptions=VISUAL_DOWN)})
    def get(self, request: Request) -> Response:
        params = VisualSearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:  # DRF trims q and refuses a blank one (400)
            return Response(visual.visual_search(query=params.validated_data["q"], k=params.validated_data["limit"]))
        except visual.VisualUnavailable as exc:
            return _visual_unavailable(exc)


class OfflineMetricsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: OfflineMetricsSerializer, **errors(404, descriptions={404: "no metrics yet"})},
                   summary="Latest model-card metrics (per dataset, model, ensemble)")
    def get(self, request: Request) -> Response:
        metrics = offline_metrics_latest()
        if metrics is None:
            raise Http404("No offline metrics yet: run `python manage.py train` or `build_serving_artifacts`.")
        return Response(metrics)


class ArtifactsHealthApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={(code, "application/json"): OpenApiResponse(ArtifactsHealthSerializer, description=text)
                              for code, text in ((200, "every artifact matches"), (503, "a mismatch or no bundle"))},
                   summary="SHA-256 of every serving artifact vs its manifest (503 on any mismatch)")
    def get(self, request: Request) -> Response:
        report = artifacts_health()
        report["tier"] = serving.current_tier_name()
        return Response(report, status=status.HTTP_200_OK if report["ok"] else status.HTTP_503_SERVICE_UNAVAILABLE)


class ArtifactsReloadApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: ArtifactsReloadedSerializer, **errors(503, descriptions=ENGINE_DOWN)},
                   summary="Reload the serving bundle here and tell every worker to reload (staff)")
    def post(self, request: Request) -> Response:
        try:
            return Response(serving.reload_now())
        except serving.EngineUnavailable as exc:
            return _unavailable(exc)


class ReloadWeightsApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        version = serializers.CharField(required=False, max_length=64, help_text="activate this version first")

    @extend_schema(request=InputSerializer, responses={200: WeightsPublishedSerializer,
                                                       **errors(404, descriptions={404: "no such weights version"})},
                   summary="Hot-reload the active ensemble weights in every worker (staff)")
    def post(self, request: Request) -> Response:
        from .models import EnsembleWeights
        from .serving_services import ensemble_weights_activate

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data.get("version"):
            row = EnsembleWeights.objects.filter(version=data.validated_data["version"]).first()
            if row is None:
                raise NotFound(f"No ensemble weights version {data.validated_data['version']!r}.")
            ensemble_weights_activate(weights_id=row.id)
        active = ensemble_weights_active()
        if active is None:
            raise NotFound("No ensemble weights exist yet: run `python manage.py build_serving_artifacts`.")
        serving.publish_weights_version(active.version)
        return Response({"active_version": active.version, "weights": active.weights, "published": True})


class EventFeaturesApi(APIView):
    """The caller's live feature state: recent sequence, counters by kind, events still in flight, and the online
    learner's state version (what the next recommendation reflects)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: EventFeaturesSerializer})
    def get(self, request: Request) -> Response:
        return Response({**event_features_for(user=user_signed_in(request=request)), "model_state_version": checkpoint_latest_id()})
