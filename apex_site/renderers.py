"""API responses rendered by orjson: several times faster than the standard library's encoder that DRF uses.

The output matches DRF's ``JSONRenderer`` (compact, UTF-8, non-string keys as strings, UTC datetimes with ``Z``);
values orjson has no native form for (Decimal, lazy translations, querysets, timedeltas...) go through DRF's own
encoder, and an indented response (``Accept: application/json; indent=4``, the browsable API) is DRF's.
One difference: a NaN or an infinity renders as ``null`` instead of failing the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z
_fallback = JSONEncoder().default


class ORJSONRenderer(JSONRenderer):
    """``JSONRenderer`` with orjson's encoder (see the module)."""

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)  # type: ignore[no-any-return]
        return orjson.dumps(data, default=_fallback, option=OPTIONS)
