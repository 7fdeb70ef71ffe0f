"""/v1 recommendation, evaluation and artifact endpoints."""

from django.urls import path

from . import api

app_name = "recommendations_api"
urlpatterns = [
    path("events/features", api.EventFeaturesApi.as_view(), name="event-features"),
    path("recommendations/user/<int:user_id>", api.UserRecommendationsApi.as_view(), name="user-recommendations"),
    path("recommendations/user/<int:user_id>/explanations", api.UserExplanationsApi.as_view(),
         name="user-explanations"),
    path("recommendations/id/<int:movie_id>", api.MovieRecommendationsApi.as_view(), name="movie-recommendations"),
    path("recommendations/id/<int:movie_id>/enriched", api.MovieRecommendationsEnrichedApi.as_view(),
         name="movie-recommendations-enriched"),
    path("recommendations/id/<int:movie_id>/visual", api.MovieVisualApi.as_view(), name="movie-visual"),
    path("search/visual", api.VisualSearchApi.as_view(), name="search-visual"),
    path("recommendations/knowledge-graph/<int:movie_id>", api.KnowledgeGraphApi.as_view(),
         name="knowledge-graph"),
    path("evaluation/offline-metrics", api.OfflineMetricsApi.as_view(), name="offline-metrics"),
    path("artifacts/reload", api.ArtifactsReloadApi.as_view(), name="artifacts-reload"),
    path("artifacts/health", api.ArtifactsHealthApi.as_view(), name="artifacts-health"),
    path("admin/reload-ensemble-weights", api.ReloadWeightsApi.as_view(), name="reload-ensemble-weights"),
]
