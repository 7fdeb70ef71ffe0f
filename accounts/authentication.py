"""DRF authentication for machines: ``Authorization: Api-Key <key>`` (``request.auth`` is the ApiKey) and
``Authorization: Bearer <JWT>`` with the token's user from this process's memory."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from apex_site.broadcast import LocalMemory

from .models import ApiKey
from .selectors import api_key_find_active
from .services import api_key_touch

# a token's user, kept for a few seconds; any save or delete of the user drops it in every process at once
JWT_USER_MEMORY = LocalMemory("jwt-users", ttl_s=10.0)

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticate a third-party app by its API key; other schemes are left to the next class."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Api-Key header: expected 'Authorization: Api-Key <key>'.")
        try:
            raw = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("API key contains invalid characters.") from exc
        key = api_key_find_active(raw=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_touch(key=key)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class JWTAuthentication(SimpleJWTAuthentication):
    """simplejwt's check of the token, then its user from ``JWT_USER_MEMORY`` instead of a query per request.

    What a request gets is a copy of the remembered user (its own related-object cache), so nothing one request
    loads or changes on ``request.user`` reaches the next. ``user_forget`` (accounts/receivers: every save or delete
    of a user) drops the entry in every process, so a deactivated member's tokens stop working at once.
    """

    def get_user(self, validated_token: Any) -> Any:  # simplejwt types it as its AuthUser
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        key = str(user_id)
        user = JWT_USER_MEMORY.get(key) if user_id is not None else None
        if user is None:
            generation = JWT_USER_MEMORY.generation  # a forget from here on keeps this read out of the memory
            user = super().get_user(validated_token)  # the query; missing or inactive users are refused there
            JWT_USER_MEMORY.put(key, copy.copy(user), generation=generation)
            return user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        return copy.copy(user)


def user_forget(*, user_id: int) -> None:
    """Drop the user from every process's token memory (after any change to the user)."""
    JWT_USER_MEMORY.forget([str(user_id)])
