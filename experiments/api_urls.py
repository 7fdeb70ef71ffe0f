"""/v1 experiment endpoints."""

from django.urls import path

from . import api

app_name = "experiments_api"
urlpatterns = [
    path("experiments/<int:experiment_id>", api.ExperimentDetailApi.as_view(), name="experiment-detail"),
]
