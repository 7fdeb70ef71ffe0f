from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("api-keys/", views.api_key_list_page, name="api-key-list"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke_page, name="api-key-revoke"),
]
