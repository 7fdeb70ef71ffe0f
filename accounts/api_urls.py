from django.urls import path

from . import api

app_name = "accounts_api"
urlpatterns = [
    path("auth/register", api.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", api.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", api.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/me", api.ProfileDetailApi.as_view(), name="profile-detail"),
    path("auth/api-keys", api.ApiKeyListCreateApi.as_view(), name="api-key-list"),
    path("auth/api-keys/<int:key_id>", api.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]
