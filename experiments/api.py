"""GET /v1/experiments/{id}: an experiment's arms, results over time and decision (staff only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apex_site.schema import errors

from .selectors import experiment_get_for, experiment_results_recent


class ArmResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text="weights, tier, exploration or rerank")
    config = serializers.JSONField(help_text="what the arm changes in a recommendation request")
    is_control = serializers.BooleanField()
    share = serializers.FloatField(help_text="the configured traffic share")
    allocation = serializers.FloatField(help_text="the traffic probability now (Thompson: the last computed one)")
    stopped_at = serializers.DateTimeField(allow_null=True, help_text="when the guardrail stopped it")
    stop_reason = serializers.CharField()
    members = serializers.IntegerField(help_text="members measured (the unit of analysis)")
    impressions = serializers.IntegerField(help_text="distinct movies shown to them")
    estimate = serializers.FloatField(allow_null=True, help_text="the metric's mean over members")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    difference = serializers.FloatField(allow_null=True, help_text="arm - control")
    difference_low = serializers.FloatField(allow_null=True, help_text="always-valid confidence sequence, low")
    difference_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="always-valid (mSPRT) p-value against control")
    significant = serializers.BooleanField()


class LookSerializer(serializers.Serializer):
    arm_id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    members = serializers.IntegerField()
    estimate = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    allocation = serializers.FloatField()


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    metric = serializers.CharField(help_text="click_through, rating_rate, watch_rate or mean_rating")
    allocation = serializers.CharField(help_text="fixed or thompson")
    floor_share = serializers.FloatField()
    guardrail_bound = serializers.FloatField()
    alpha = serializers.FloatField()
    status = serializers.CharField(help_text="draft, running, stopped or concluded")
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    computed_at = serializers.DateTimeField()
    arms = ArmResultSerializer(many=True)
    srm = serializers.JSONField(allow_null=True, help_text="sample-ratio mismatch check (fixed allocation)")
    recommendation = serializers.JSONField(help_text="what the numbers say now: ship, keep control or investigate")
    decision = serializers.JSONField(help_text="the recorded conclusion ({} until concluded)")
    history = LookSerializer(many=True, help_text="every stored look, oldest first")


class ExperimentDetailApi(APIView):
    """One experiment with its per-arm results."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: ExperimentSerializer, **errors(404)},
                   summary="An experiment's arms, per-arm estimates over time and decision (staff only)")
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = experiment_get_for(user=request.user, experiment_id=experiment_id)
        results = experiment_results_recent(experiment=experiment).as_dict()
        fields = ("name", "metric", "allocation", "floor_share", "guardrail_bound", "alpha", "started_at",
                  "stopped_at", "decision")
        payload = {"id": experiment.pk, **{f: getattr(experiment, f) for f in fields}, **results}
        return Response(ExperimentSerializer(payload).data)
