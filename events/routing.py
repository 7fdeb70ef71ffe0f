"""Websocket routes of the events app (collected by apex_site.routing)."""

from django.urls import path

from .consumers import RecommendationsConsumer

websocket_urlpatterns = [
    path("ws/recommendations/", RecommendationsConsumer.as_asgi()),
]
