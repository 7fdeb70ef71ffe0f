"""OpenAPI: describe ``Authorization: Api-Key <key>`` and our JWT authentication so the schema and Swagger UI
offer them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "API key created under /account/api-keys/, sent as `Api-Key <key>`."}


class JWTScheme(SimpleJWTScheme):
    """simplejwt's bearer scheme, for its subclass that keeps the token's user in memory."""

    target_class = "accounts.authentication.JWTAuthentication"
