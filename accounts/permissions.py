"""Permissions shared by account-management endpoints."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from .selectors import request_api_key


class IsPersonNotApiKey(BasePermission):
    """Account management needs a person (session or JWT): a leaked API key must not mint more keys."""

    message = "API keys cannot manage the account; sign in or use a JWT access token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request_api_key(request) is None
