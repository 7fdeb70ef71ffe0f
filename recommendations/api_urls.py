from django.urls import path  # noqa: F401

app_name = "recommendations_api"
urlpatterns: list = []
