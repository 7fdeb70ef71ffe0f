"""OpenAPI generation: every operation has an area tag, a public description and the errors it can return.

``ApexAutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``):

- tags each operation with its area (``AREAS``, by path; the schema's ``tags`` describe them, in order);
- describes it by ``extend_schema(description=...)`` or the first paragraph of the view's own docstring (not a
  mixin's), so notes for developers stay in the code;
- adds an ``Error`` (or, for 400, ``ValidationError``) response with examples for each status the view's
  classes can produce (auth, permissions, throttles, a path id), unless the view documents that status itself;
- marks operations anyone may call that run a model (``PublicModelRateThrottle``) as public, with their limit.

Statuses a handler raises itself (404 for an unknown id, 409, 503) are documented on the view with ``errors(...)``,
so a response the schema does not name is a bug the schemathesis suite finds. ``finish_schema`` (a
``POSTPROCESSING_HOOKS`` entry) adds the ``ValidationError`` component and the tags, and writes Markdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    from drf_spectacular.utils import Direction

# The API's areas, in the order the docs list them, and the path prefixes that belong to each
AREAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Accounts": ("Register, tokens, your profile and API keys.", ("/v1/auth/",)),
    "Catalog": ("Movies and their metadata.", ("/v1/movies",)),
    "Search": ("Keyword, semantic and poster search.", ("/v1/search",)),
    "Recommendations": ("Personalised, similar-movie, knowledge-graph and visually similar lists.",
                        ("/v1/recommendations/",)),
    "Events": ("Interactions in (idempotent), your live feature state, private analytics.", ("/v1/events",)),
    "Billing": ("Plans, checkout, the customer portal and this month's usage.", ("/v1/billing/",)),
    "Experiments": ("A/B tests of recommendation policies (staff).", ("/v1/experiments/",)),
    "Platform": ("Status, readiness, latency targets, offline metrics and serving operations.",
                 ("/v1/platform/", "/v1/evaluation/", "/v1/artifacts/", "/v1/admin/")),
}
TAGS = [{"name": name, "description": text} for name, (text, _) in AREAS.items()]

VALIDATION_ERROR_REF = {"$ref": "#/components/schemas/ValidationError"}
VALIDATION_ERROR_SCHEMA = {
    "description": "Invalid input: messages per field (`{\"field\": [\"message\"]}`), or `detail` and `code` when "
                   "the input could not be read at all.",
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


class ErrorSerializer(serializers.Serializer):
    """An error: `detail` says what went wrong; `code` names it for programs. Some errors add fields (a quota
    refusal its plan and limit, a conflict the fields in conflict)."""

    detail = serializers.CharField(help_text="what went wrong, for people")
    code = serializers.CharField(required=False, help_text="what went wrong, for programs (e.g. `not_found`)")


def _example(name: str, value: Any, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary or name, response_only=True)


# Real bodies (apex_site.errors shapes them), one or more per status
EXAMPLES: dict[int, list[OpenApiExample]] = {
    400: [_example("Invalid field", {"k": ["Ensure this value is less than or equal to 100."]}),
          _example("Unreadable body", {"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)",
                                       "code": "parse_error"})],
    401: [_example("No credentials", {"detail": "Authentication credentials were not provided.",
                                      "code": "not_authenticated"}),
          _example("Bad API key", {"detail": "Invalid or revoked API key.", "code": "authentication_failed"})],
    403: [_example("Not allowed", {"detail": "You do not have permission to perform this action.",
                                   "code": "permission_denied"})],
    404: [_example("Not found", {"detail": "Not found.", "code": "not_found"})],
    409: [_example("Conflict", {"detail": "'k-1' was already used for a different event; a replay must send the same "
                                          "fields, a new event needs a new key", "code": "idempotency_conflict"})],
    413: [_example("Too large", {"detail": "Request body too large.", "code": "request_too_large"})],
    415: [_example("Not JSON", {"detail": "Unsupported media type \"text/plain\" in request.",
                                "code": "unsupported_media_type"})],
    429: [_example("Rate limit", {"detail": "Request was throttled. Expected available in 12 seconds.",
                                  "code": "throttled"}),
          _example("Monthly quota", {
              "detail": "Monthly quota exceeded: the Free plan includes 1,000 recommendations per month and 1,000 are "
                        "used this period. The quota resets at 2027-01-01T00:00:00Z.",
              "code": "quota_exceeded", "kind": "recommendations", "plan": "free", "limit": 1000, "used": 1000,
              "resets_at": "2027-01-01T00:00:00Z", "upgrade": "Upgrade to Pro for 100,000 recommendations per month: "
              "visit /billing/ or POST /v1/billing/checkout with {\"plan\": \"pro\"}.", "upgrade_plan": "pro"})],
    503: [_example("Unavailable", {"detail": "The serving artifacts are not loaded yet; retry shortly.",
                                   "code": "service_unavailable"})],
}


def error_response(status: int, description: str | None = None) -> OpenApiResponse:
    """One documented error: the shared body (``Error``, or ``ValidationError`` for 400) with real examples."""
    body = VALIDATION_ERROR_REF if status == 400 else ErrorSerializer
    generic = [_example(f"Error {status}", {"detail": "Error.", "code": "error"})]
    return OpenApiResponse(body, description=description or DESCRIPTIONS[status],
                           examples=EXAMPLES.get(status, generic))


def errors(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, Any]:
    """Responses for errors a handler raises itself, to merge into ``extend_schema(responses=...)``:
    ``{200: Out, **errors(404, 503, descriptions={503: "index not built"})}``."""
    texts = descriptions or {}
    return {s: error_response(s, texts.get(s)) for s in statuses}


def area_of(path: str) -> str | None:
    """The area (tag) a path belongs to, or None."""
    return next((area for area, (_, prefixes) in AREAS.items() if path.startswith(prefixes)), None)


class ApexAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus area tags, public descriptions and the errors the view's classes imply."""

    def get_tags(self) -> list[str]:
        area = area_of(self.path)
        return [area] if area else super().get_tags()

    def get_description(self) -> str:  # type: ignore[override]
        handler = getattr(self.view, self.method.lower(), None)
        view_class = type(self.view)
        own = view_class.__doc__ if "__doc__" in vars(view_class) else None  # not a mixin's or a library's
        text = get_doc(handler) or (get_doc(view_class) if own else "")
        text = text.split("\n\n", 1)[0]
        throttle = _public_model_throttle(self.view)
        if throttle is not None and self._allows_everyone():
            text = f"{text}\n\n{_public_note(self.view, throttle)}".strip()
        return text

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in sorted(self._implied_error_statuses()):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(error_response(status), str(status))
        return responses

    def _allows_everyone(self) -> bool:
        permissions = list(self.view.get_permissions()) if hasattr(self.view, "get_permissions") else []
        return all(_allows_everyone(p, self.method.upper()) for p in permissions)

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


def _public_model_throttle(view: Any) -> Any:
    from apex_site.client_ip import PublicModelRateThrottle

    throttles = list(view.get_throttles()) if hasattr(view, "get_throttles") else []
    return next((t for t in throttles if isinstance(t, PublicModelRateThrottle)), None)


def _public_note(view: Any, throttle: Any) -> str:
    note = (f"**Public**: answers without credentials. Anonymous callers share one limit of {throttle.rate} per "
            "address across the public endpoints that run a model (429 past it).")
    if getattr(view, "quota_kind", None):
        note += f" With a token or API key the call counts against your plan's monthly {view.quota_kind} quota instead."
    return note


def _allows_everyone(permission: Any, method: str) -> bool:
    return isinstance(permission, AllowAny) or (isinstance(permission, IsAuthenticatedOrReadOnly)
                                                and method in SAFE_METHODS)


def _is_token_view(view: Any) -> bool:
    return any(cls.__name__ == "TokenViewBase" for cls in type(view).__mro__)


def _markdown(node: Any) -> None:
    """Docstrings use reStructuredText's double backticks; Swagger UI and Redoc render Markdown's single ones."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                node[key] = value.replace("``", "`")
            else:
                _markdown(value)
    elif isinstance(node, list):
        for value in node:
            _markdown(value)


def finish_schema(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: the ``ValidationError`` component 400 responses name, the areas described in
    order, Markdown descriptions."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
    result["tags"] = TAGS
    _markdown(result)
    return result
