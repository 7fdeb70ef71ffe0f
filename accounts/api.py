"""Machine-facing account API: register, JWT, profile and API keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .models import ApiKey
from .permissions import IsPersonNotApiKey
from .selectors import api_key_list, profile_get
from .services import api_key_create, api_key_revoke, email_verification_send, profile_update, user_register


def _as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]


class RegisterApi(APIView):
    """Create an account and return a JWT pair, so a machine can call the API at once."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AnonRateThrottle]

    class RegisterInputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
        email = serializers.EmailField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema(request=RegisterInputSerializer, responses={201: inline_serializer("Registered", {
        "id": serializers.IntegerField(), "username": serializers.CharField(), "email": serializers.EmailField(),
        "access": serializers.CharField(), "refresh": serializers.CharField()})})
    def post(self, request: Request) -> Response:
        data = self.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = user_register(**data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        email_verification_send(user=user, request=request._request)
        refresh = RefreshToken.for_user(user)
        return Response({"id": user.pk, "username": user.username, "email": user.email,
                         "access": str(refresh.access_token), "refresh": str(refresh)},
                        status=status.HTTP_201_CREATED)


class TokenObtainApi(TokenObtainPairView):
    """Username and password for a JWT pair; throttled per client address against password guessing."""

    throttle_classes = [AnonRateThrottle]


class TokenRefreshApi(TokenRefreshView):
    """A refresh token for a new access token."""

    throttle_classes = [AnonRateThrottle]


class ProfileDetailApi(APIView):
    """The caller's own profile: favourite genres and onboarding state."""

    permission_classes = [IsAuthenticated]

    class ProfileSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="user.pk")
        username = serializers.CharField(source="user.username")
        email = serializers.EmailField(source="user.email")
        favourite_genres = serializers.ListField(child=serializers.CharField())
        onboarding_done = serializers.BooleanField()

    class ProfileUpdateInputSerializer(serializers.Serializer):
        favourite_genres = serializers.ListField(child=serializers.CharField(max_length=64), max_length=20)

    @extend_schema(responses=ProfileSerializer)
    def get(self, request: Request) -> Response:
        return Response(self.ProfileSerializer(profile_get(user=request.user)).data)

    @extend_schema(request=ProfileUpdateInputSerializer, responses=ProfileSerializer)
    def patch(self, request: Request) -> Response:
        if not IsPersonNotApiKey().has_permission(request, self):
            self.permission_denied(request, message=IsPersonNotApiKey.message)
        data = self.ProfileUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            profile = profile_update(user=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(self.ProfileSerializer(profile).data)


class ApiKeyListCreateApi(APIView):
    """List the caller's keys, or create one (the full key is in this response only)."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    class ApiKeyCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(api_key_list(user=request.user), many=True).data)

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeySerializer})
    def post(self, request: Request) -> Response:
        data = self.ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key, raw = api_key_create(user=request.user, name=data.validated_data["name"])
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        body = ApiKeySerializer(key).data | {"key": raw, "warning": "Store this key now; it is never shown again."}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    """Revoke one of the caller's keys; other people's keys are 404."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: int) -> Response:
        api_key_revoke(user=request.user, key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
