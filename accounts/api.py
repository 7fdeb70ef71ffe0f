"""Machine-facing account API: register, JWT, profile and API keys."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from apex_site.client_ip import AnonRateThrottle
from apex_site.schema import errors

from .lockout import SignInLocked, signin_begin, signin_cancelled, signin_succeeded
from .models import ApiKey
from .permissions import IsPersonNotApiKey
from .selectors import api_key_list, profile_get, user_email_verified, user_signed_in
from .services import (
    ApiKeyRefused,
    api_key_create,
    api_key_revoke,
    email_verification_send,
    profile_update,
    user_register,
)

UNVERIFIED_MESSAGE = ("Verify your e-mail address first: follow the link we mailed you (sign in on the site to "
                      "have it sent again). Tokens and API keys are issued to verified accounts only.")


def _as_drf_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="the full key: shown in this response only")
    warning = serializers.CharField(read_only=True)

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key", "warning"]


class RegisterApi(APIView):
    """Create an account and mail the verification link; tokens come from /v1/auth/token once it is verified."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AnonRateThrottle]

    class RegisterInputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
        email = serializers.EmailField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema(request=RegisterInputSerializer, responses={201: inline_serializer("Registered", {
        "id": serializers.IntegerField(), "username": serializers.CharField(), "email": serializers.EmailField(),
        "verification_required": serializers.BooleanField(help_text="tokens and keys wait for the e-mailed link"),
        "detail": serializers.CharField()})})
    def post(self, request: Request) -> Response:
        data = self.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = user_register(**data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        email_verification_send(user=user, request=request._request)
        required = not user_email_verified(user=user)
        detail = ("Registered. Get a token pair from /v1/auth/token." if not required else
                  f"Registered. Verify your e-mail address: we sent a link to {user.email}. Then get a token "
                  f"pair from /v1/auth/token; no tokens or API keys are issued before that.")
        return Response({"id": user.pk, "username": user.username, "email": user.email, "verification_required": required,
                         "detail": detail}, status=status.HTTP_201_CREATED)


class EmailNotVerified(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = UNVERIFIED_MESSAGE
    default_code = "email_not_verified"


class VerifiedTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Username and password; an account whose e-mail address is not verified gets 403 and no token."""

    # simplejwt's pair serializer: the check runs before a token is minted

    @classmethod
    def get_token(cls, user: Any) -> Token:
        if not user_email_verified(user=user):
            raise EmailNotVerified()
        return super().get_token(user)


class TokenObtainApi(TokenObtainPairView):
    """Username and password for a JWT pair, for verified accounts.

    Throttled per real client address (``anon``), and failed passwords back off per account × address,
    per address and per account from unfamiliar addresses (accounts.lockout): 429 with Retry-After.
    """

    throttle_classes = [AnonRateThrottle]
    serializer_class = VerifiedTokenObtainPairSerializer

    @extend_schema(responses={200: inline_serializer("TokenPair", {
        "access": serializers.CharField(), "refresh": serializers.CharField()}),
        **errors(403, descriptions={403: "e-mail address not verified"})})
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        login = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(login, str) or not login:
            return super().post(request, *args, **kwargs)  # 400: no password is checked
        try:
            attempt = signin_begin(request=request, login=login)
        except SignInLocked as exc:
            raise Throttled(wait=exc.retry_after, detail=(
                f"Too many failed sign-in attempts for this account from your address; try again in "
                f"{exc.retry_after} s.")) from exc
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            raise  # counted
        except EmailNotVerified:
            signin_succeeded(attempt=attempt)  # the password was right
            raise
        except Exception:
            signin_cancelled(attempt=attempt)
            raise
        signin_succeeded(attempt=attempt)
        return response


class VerifiedTokenRefreshSerializer(TokenRefreshSerializer):
    """A refresh token; the account must still exist (else 401) and be verified (else 403)."""

    # simplejwt's refresh serializer answers 500 for a deleted account: 401 here instead

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        try:
            user = get_user_model().objects.filter(
                **{jwt_settings.USER_ID_FIELD: refresh.payload.get(jwt_settings.USER_ID_CLAIM)}).first()
        except (ValueError, TypeError):
            user = None
        if user is None:
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        if not user_email_verified(user=user):
            raise EmailNotVerified()
        return super().validate(attrs)


class TokenRefreshApi(TokenRefreshView):
    """A refresh token for a new access token (the account must still exist and be verified)."""

    throttle_classes = [AnonRateThrottle]
    serializer_class = VerifiedTokenRefreshSerializer

    @extend_schema(responses={200: inline_serializer("AccessToken", {"access": serializers.CharField()}),
                              **errors(403, descriptions={403: "e-mail address not verified"})})
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().post(request, *args, **kwargs)


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
        return Response(self.ProfileSerializer(profile_get(user=user_signed_in(request=request))).data)

    @extend_schema(request=ProfileUpdateInputSerializer, responses=ProfileSerializer)
    def patch(self, request: Request) -> Response:
        if not IsPersonNotApiKey().has_permission(request, self):
            self.permission_denied(request, message=IsPersonNotApiKey.message)
        data = self.ProfileUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            profile = profile_update(user=user_signed_in(request=request), **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        return Response(self.ProfileSerializer(profile).data)


class ApiKeyLimitReached(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Too many active API keys; revoke one first."
    default_code = "api_key_limit"


class ApiKeyListCreateApi(APIView):
    """List the caller's keys, or create one (the full key is in this response only)."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    class ApiKeyCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ApiKeySerializer(api_key_list(user=user_signed_in(request=request)), many=True).data)

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedSerializer, **errors(
        403, 409, descriptions={403: "e-mail address not verified", 409: "too many active keys"})})
    def post(self, request: Request) -> Response:
        data = self.ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key, raw = api_key_create(user=user_signed_in(request=request), name=data.validated_data["name"])
        except ApiKeyRefused as exc:
            if exc.reason == "unverified":
                raise EmailNotVerified() from exc
            raise ApiKeyLimitReached(exc.messages[0]) from exc
        except DjangoValidationError as exc:
            raise _as_drf_error(exc) from exc
        body = ApiKeySerializer(key).data | {"key": raw, "warning": "Store this key now; it is never shown again."}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    """Revoke one of the caller's keys; other people's keys are 404."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: int) -> Response:
        api_key_revoke(user=user_signed_in(request=request), key_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
