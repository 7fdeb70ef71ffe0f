"""Events API: post interactions (202, idempotent), the caller's live features, private analytics."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.module_loading import import_string
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.selectors import request_api_key, user_signed_in
from apex_site.params import QueryParamsSerializer
from apex_site.schema import errors

from .models import Event
from .parsing import events_parse
from .privacy import DIMENSIONS, MAX_QUERY_EPSILON, PrivacyBudgetExhausted, analytics_release
from .services import (
    EventInput,
    IdempotencyConflict,
    event_record_batch,
    event_time_validate,
    event_value_validate,
    movie_ids_unknown,
)

MAX_BATCH = 1000


class IdempotencyKeyConflict(DrfValidationError):
    """409: an idempotency key already stored with a different body (nothing of the request is stored)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_conflict"


class EventInputSerializer(serializers.Serializer):
    """One interaction: a click, rating, watch, watchlist add or impression of a movie."""

    # the documented shape; parsing.events_parse checks it (faster than this serializer)

    movie_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Event.Kind.choices)
    value = serializers.FloatField(required=False, allow_null=True)
    idempotency_key = serializers.CharField(min_length=1, max_length=128, help_text="client-chosen; a replay returns the same event")
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    propensity = serializers.FloatField(required=False, allow_null=True, help_text="impressions only, in (0, 1]")
    position = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=10_000)
    policy_version = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    request_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    external_user = serializers.CharField(required=False, allow_blank=True, max_length=128, default="",
                                          help_text="API keys only: your own id for the end user")


class EventBatchSerializer(serializers.Serializer):
    # DRF hands max_length to the ListSerializer that many=True builds; the stubs leave it out of __init__
    events = EventInputSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)  # type: ignore[call-arg]


EVENT_ERRORS = errors(400, 404, 409, descriptions={404: "unknown movie (``field`` names the event)"})


class AcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    replayed = serializers.BooleanField()


def _inputs(request: Request, *, batch: bool) -> list[EventInput]:
    """Parse, check domain rules (400 per field either way: one validation status) and movies (404), build the inputs."""
    rows, errors = events_parse(request.data, batch=batch, max_batch=MAX_BATCH)
    if errors:
        raise serializers.ValidationError(errors)
    is_key = request_api_key(request) is not None
    name = (lambda i, field: f"events.{i}.{field}") if batch else (lambda i, field: field)
    for i, row in enumerate(rows):
        if row["external_user"] and not is_key:
            errors[name(i, "external_user")] = ["only API keys may post for their end users"]
        for check, fields in ((event_value_validate, ("kind", "value", "propensity")),
                              (event_time_validate, ("occurred_at",))):
            try:
                check(**{field: row[field] for field in fields})
            except DjangoValidationError as exc:
                errors.update({name(i, field): msgs for field, msgs in exc.message_dict.items()})
    if errors:
        raise serializers.ValidationError(errors)
    unknown = set(movie_ids_unknown(movie_ids=[row["movie_id"] for row in rows]))
    for i, row in enumerate(rows):
        if row["movie_id"] in unknown:
            raise NotFound({"detail": f"No movie with id {row['movie_id']}", "field": name(i, "movie_id")})
    return [EventInput(**row) for row in rows]


def _record(request: Request, items: list[EventInput], *, batch: bool) -> list[tuple[Event, bool]]:
    try:
        return event_record_batch(user=user_signed_in(request=request), items=items, api_key=request_api_key(request),
                                  meter=lambda new: events_quota().consume(request, kind="events", amount=new))
    except IdempotencyConflict as exc:
        fields = {(f"events.{i}.idempotency_key" if batch else "idempotency_key"):
                  [f"{items[i].idempotency_key!r} was already used for a different event; a replay must send the "
                   "same fields, a new event needs a new key"] for i in exc.positions}
        # the documented Error shape (detail, code) with the conflicting fields beside it
        raise IdempotencyKeyConflict({"detail": next(iter(fields.values()))[0] if len(fields) == 1 else
                                      f"{len(fields)} idempotency keys were already used for different events",
                                      "code": IdempotencyKeyConflict.default_code, **fields}) from exc
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc


def events_quota() -> Any:
    """The throttle that meters the events quota, named by settings.EVENTS_QUOTA_THROTTLE (billing's)."""
    return import_string(settings.EVENTS_QUOTA_THROTTLE)()


class _MeteredApi(APIView):
    """Throttled by ``events_quota`` (its burst limit); the events quota is metered per new event once the request
    has passed its checks (in the recording transaction, ``_record``): a replay (an idempotency key sent before) is not counted twice."""

    quota_kind: str | None = None

    def get_throttles(self) -> list[BaseThrottle]:
        return [events_quota()]


class EventCreateApi(_MeteredApi):
    """Accept one interaction for the authenticated user: stored durably, streamed after commit, 202."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=EventInputSerializer, responses={202: AcceptedSerializer, **EVENT_ERRORS})
    def post(self, request: Request) -> Response:
        items = _inputs(request, batch=False)
        (event, created), = _record(request, items, batch=False)
        return Response({"id": str(event.id), "status": "accepted", "replayed": not created},
                        status=status.HTTP_202_ACCEPTED)


class EventBatchCreateApi(_MeteredApi):
    """Accept up to 1,000 interactions in one transaction (all or none); each counts against the events quota."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=EventBatchSerializer, responses={202: inline_serializer("EventBatchAccepted", {
        "accepted": serializers.IntegerField(), "replayed": serializers.IntegerField(),
        "events": AcceptedSerializer(many=True)}), **EVENT_ERRORS})
    def post(self, request: Request) -> Response:
        items = _inputs(request, batch=True)
        results = _record(request, items, batch=True)
        replayed = sum(1 for _, created in results if not created)
        return Response({"accepted": len(results) - replayed, "replayed": replayed,
                         "events": [{"id": str(e.id), "status": "accepted", "replayed": not created}
                                    for e, created in results]}, status=status.HTTP_202_ACCEPTED)


class PrivacyBudgetRefused(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "privacy_budget_exhausted"


def analyst_of(request: Request) -> str:
    """The accountant's key: the member behind the call, ``user:<id>``, whether by API key or (staff) in person.

    One budget per member: every key of theirs and their own session draw on it, so more keys buy no more ε.
    """
    if request_api_key(request) is not None or request.user.is_staff:
        return f"user:{request.user.pk}"
    raise PermissionDenied("Recommendation analytics are for staff analysts and API keys.")


class RecommendationAnalyticsApi(APIView):
    """Interactions by genre, demographic bucket or hour, with Laplace noise; each answer spends ε of your budget."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(QueryParamsSerializer):  # query parameters: ``?dimension=`` is a 400, not the default
        dimension = serializers.ChoiceField(choices=DIMENSIONS, default="genre")
        epsilon = serializers.FloatField(default=0.5, min_value=1e-3, max_value=MAX_QUERY_EPSILON,
                                         help_text="privacy cost of this query; noise scale = sensitivity / ε")
        kind = serializers.ChoiceField(choices=[k for k in Event.Kind.values if k != "impression"], required=False)

    @extend_schema(parameters=[InputSerializer], responses={200: inline_serializer("RecommendationAnalytics", {
        "dimension": serializers.CharField(), "mechanism": serializers.CharField(),
        "epsilon": serializers.FloatField(), "sensitivity": serializers.FloatField(),
        "noise_scale": serializers.FloatField(), "counts": serializers.DictField(child=serializers.FloatField()),
        "budget": inline_serializer("PrivacyBudget", {
            "analyst": serializers.CharField(), "spent_epsilon": serializers.FloatField(),
            "remaining_epsilon": serializers.FloatField(), "budget_epsilon": serializers.FloatField()})})})
    def get(self, request: Request) -> Response:
        analyst = analyst_of(request)
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        try:
            release = analytics_release(analyst=analyst, **data.validated_data)
        except PrivacyBudgetExhausted as exc:
            raise PrivacyBudgetRefused(str(exc)) from exc
        budget = release.budget
        return Response({
            "dimension": release.dimension, "mechanism": "laplace", "epsilon": release.epsilon,
            "sensitivity": release.sensitivity, "noise_scale": release.noise_scale,
            "counts": {k: round(v, 2) for k, v in release.counts.items()},
            "budget": {"analyst": budget.analyst, "spent_epsilon": round(budget.spent_epsilon, 6),
                       "remaining_epsilon": round(budget.remaining_epsilon, 6),
                       "budget_epsilon": budget.budget_epsilon}})
