from django.urls import path

from . import api

app_name = "events_api"
urlpatterns = [
    path("events", api.EventCreateApi.as_view(), name="event-create"),
    path("events/batch", api.EventBatchCreateApi.as_view(), name="event-batch-create"),
    path("events/recommendation-analytics", api.RecommendationAnalyticsApi.as_view(),
         name="recommendation-analytics"),
]
