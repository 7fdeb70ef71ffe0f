from django.urls import path

from . import platform_api

app_name = "platform"
urlpatterns = [
    path("status", platform_api.PlatformStatusApi.as_view(), name="status"),
    path("readiness", platform_api.PlatformReadinessApi.as_view(), name="readiness"),
    path("slo", platform_api.PlatformSloApi.as_view(), name="slo"),
]
