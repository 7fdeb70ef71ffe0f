"""OpenAPI generation: every operation documents the errors it can return, from its auth, permissions and throttles.

``ApexAutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds an ``Error`` (or, for 400,
``ValidationError``) response for each status the view's classes can produce, unless the view documents
that status itself. ``error_components`` (a ``POSTPROCESSING_HOOKS`` entry) adds the two components once.
Statuses a handler raises itself (404 for an unknown id, 409, 503) are documented on the view with
``errors(...)``, so a response the schema does not name is a bug the schemathesis suite finds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from drf_spectacular.utils import Direction

ERROR_REF = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR_REF = {"$ref": "#/components/schemas/ValidationError"}

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: ``detail`` says what went wrong; ``code`` names it for programs, when known.",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": True,
}
VALIDATION_ERROR_SCHEMA = {
    "description": "Invalid input: messages per field (``{\"field\": [\"message\"]}``), under ``detail`` when "
                   "the input could not be parsed at all, or a list of messages.",
    "oneOf": [{"type": "object", "additionalProperties": True}, {"type": "array", "items": {}}],
}

DESCRIPTIONS = {
    # every validation failure is 400 (malformed, out of range, or breaking a domain rule): one status to handle
    400: "Invalid input: a parameter or field is missing, empty, malformed, out of range or breaks a domain rule "
         "(e.g. an event time outside the accepted window); the body names each field.",
    401: "No valid credentials: a missing, malformed, expired or revoked token or API key.",
    403: "Authenticated, but not allowed to do this.",
    404: "Not found (an unknown id, or one that belongs to someone else).",
    409: "Conflicts with an earlier request (an idempotency key reused with a different body).",
    413: "Request body too large.",
    415: "Unsupported media type (send application/json).",
    429: "Too many requests (rate limit or monthly quota); retry after the Retry-After header.",
    503: "A dependency is unavailable (serving artifacts, database, Redis); retry later.",
}
BODY_METHODS = ("POST", "PUT", "PATCH")


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    """A raw response entry (used as ``extend_schema(responses={404: error_response(404)})``)."""
    ref = VALIDATION_ERROR_REF if status == 400 else ERROR_REF
    return {"description": description or DESCRIPTIONS[status], "content": {"application/json": {"schema": ref}}}


def errors(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, Any]:
    """Responses for errors a handler raises itself, to merge into ``extend_schema(responses=...)``:
    ``{200: Out, **errors(404, 503, descriptions={503: "index not built"})}``."""
    from drf_spectacular.utils import OpenApiResponse

    texts = descriptions or {}
    return {s: OpenApiResponse(VALIDATION_ERROR_REF if s == 400 else ERROR_REF,
                               description=texts.get(s, DESCRIPTIONS[s])) for s in statuses}


class ApexAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses the view's classes imply."""

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in sorted(self._implied_error_statuses()):
            responses.setdefault(str(status), error_response(status))
        return responses

    def _implied_error_statuses(self) -> set[int]:
        view, method = self.view, self.method.upper()
        statuses = {400}  # every /v1 request passes the edge validation (query strings, bodies, encodings)
        authenticators = list(view.get_authenticators()) if hasattr(view, "get_authenticators") else []
        if authenticators or _is_token_view(view):
            statuses.add(401)  # a bad credential is refused even where none is needed
        permissions = list(view.get_permissions()) if hasattr(view, "get_permissions") else []
        if any(not _allows_everyone(p, method) for p in permissions):
            statuses |= {401, 403}
        if any(type(a).__name__ == "SessionAuthentication" for a in authenticators) and method not in SAFE_METHODS:
            statuses.add(403)  # a session without its CSRF token
        if "{" in self.path or (getattr(view, "pagination_class", None) and self._is_list_view()):
            statuses.add(404)  # an id nobody has or the caller may not see; a page past the last
        if method in BODY_METHODS:
            statuses |= {413, 415}
        throttles = list(view.get_throttles()) if hasattr(view, "get_throttles") else []
        if any(isinstance(t, BaseThrottle) for t in throttles) or getattr(view, "quota_kind", None):
            statuses |= {429, 503}
        return statuses


def _allows_everyone(permission: Any, method: str) -> bool:
    return isinstance(permission, AllowAny) or (isinstance(permission, IsAuthenticatedOrReadOnly)
                                                and method in SAFE_METHODS)


def _is_token_view(view: Any) -> bool:
    return any(cls.__name__ == "TokenViewBase" for cls in type(view).__mro__)


def error_components(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: the ``Error`` and ``ValidationError`` components every error response names."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    return result
