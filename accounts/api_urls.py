from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from . import api

app_name = "accounts_api"
urlpatterns = [
    path("auth/register", api.RegisterApi.as_view(), name="auth-register"),
    path("auth/token", TokenObtainPairView.as_view(), name="auth-token"),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/me", api.ProfileDetailApi.as_view(), name="profile-detail"),
    path("auth/api-keys", api.ApiKeyListCreateApi.as_view(), name="api-key-list"),
    path("auth/api-keys/<int:key_id>", api.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]
