"""Platform endpoints: status, readiness (503 naming what is not ready), SLO latencies."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apex_site.slo import slo_report

from .background_build import background_build_state
from .llm_explain import llm_metrics
from .platform import artifact_manifests, platform_readiness, platform_uptime_s
from .serializers import PlatformStatusSerializer, ReadinessSerializer, SloReportSerializer
from .serving import serving_workers


def _serving_tier() -> str | None:
    from . import serving

    return serving.current_tier_name()


def _serving_cache() -> dict[str, int] | None:
    from . import serving

    stats = serving.current_stats()
    return None if stats is None else stats["cache"]  # type: ignore[no-any-return]


class PlatformStatusApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=PlatformStatusSerializer, summary="Version, serving tier and cache, artifact versions, uptime")
    def get(self, request: Request) -> Response:
        manifests = artifact_manifests()
        return Response({
            "version": settings.APEX_VERSION,
            "serving_tier": _serving_tier(),
            "serving_cache": _serving_cache(),  # this worker's pools and user states (docs/SERVING.md)
            "artifacts": {name: {"version": m.get("version"), "created_at": m.get("created_at")}
                          for name, m in manifests.items()},
            "uptime_s": platform_uptime_s(),
            "llm_explanations": llm_metrics(),
            # what every serving worker heard from in the last minutes runs (recommendations/serving.py)
            "serving_workers": serving_workers(),  # sentences vs template fallbacks, by reason (docs/LLM_EXPLANATIONS.md)
            "background_build": background_build_state(),  # the build after set-up (bin/setup, bin/run)
        })


class PlatformReadinessApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={(code, "application/json"): OpenApiResponse(ReadinessSerializer, description=text)
                              for code, text in ((200, "ready"), (503, "not ready: the report names what is not"))},
                   summary="Ready when database, Redis (if configured) and artifacts are")
    def get(self, request: Request) -> Response:
        report = platform_readiness()
        return Response(report, status=status.HTTP_200_OK if report["ready"] else status.HTTP_503_SERVICE_UNAVAILABLE)


class PlatformSloApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=SloReportSerializer, summary="Per-route latency p50/p95/p99 over a rolling window vs targets")
    def get(self, request: Request) -> Response:
        return Response(slo_report())
