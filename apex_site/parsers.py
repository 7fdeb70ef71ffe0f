"""The API's JSON parser: DRF's, plus a bounded nesting depth and no NUL or lone surrogate in any string or key.

Deep JSON used to end in RecursionError (500), and NUL / lone surrogates reached PostgreSQL (500).
Both are now a 400 naming the offending field by its path (``events.3.idempotency_key``).
``text_problem`` is the one rule for text, shared with ``apex_site.input_guard`` (path, query, forms).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import (  # type: ignore[attr-defined]  # get_encoding: in DRF 3.18.3, not its stubs
    JSONParser,
    get_encoding,
)
from rest_framework.utils import json

CONTAINERS = frozenset({dict, list})
# \u0000 or a \uD800-\uDFFF escape (also matches an escaped backslash before "u0000", or a valid pair: then
# the walk just finds nothing)
SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be accepted (a NUL character, a lone surrogate), or None when it is fine."""
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogates (invalid Unicode)"
    return None


def printable(name: str) -> str:
    """``name`` safe to echo in an error (NUL and surrogates escaped, so the response itself encodes)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _join(path: str, key: object) -> str:
    name = printable(key) if isinstance(key, str) else str(key)
    return f"{path}.{name}" if path else name


def json_depth_check(data: Any, *, max_depth: int) -> None:
    """ParseError when containers nest deeper than ``max_depth`` (level by level, containers only)."""
    level = [data] if isinstance(data, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise ParseError(f"JSON nested deeper than {max_depth} levels.")
        below: list[Any] = []
        for container in level:
            values = container.values() if type(container) is dict else container
            if not CONTAINERS.isdisjoint(map(type, values)):  # the usual flat event object: one C-level pass
                below += [v for v in values if type(v) in CONTAINERS]
        level = below


def json_text_check(data: Any) -> None:
    """ParseError naming the first string or key (by its path) that holds NUL or a lone surrogate."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise ParseError({path or "body": [problem]})
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in items:
            if isinstance(key, str) and (problem := text_problem(key)):
                raise ParseError({_join(path, key): [f"key {problem}"]})
            stack.append((child, _join(path, key)))


class StrictJSONParser(JSONParser):
    """JSONParser that refuses deep nesting (``API_JSON_MAX_DEPTH``), NUL and lone surrogates with 400.

    JSON text can only carry NUL or a lone surrogate as a ``\\u`` escape (raw control characters and
    invalid UTF-8 are parse errors already), so strings are walked only when the text has such an escape:
    a batch of 1,000 events costs one regex scan and the depth check, not a walk over every value.
    """

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        max_depth = settings.API_JSON_MAX_DEPTH
        try:
            text = stream.read().decode(get_encoding(parser_context or {}))
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {max_depth} levels.") from exc
        except ValueError as exc:  # also UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
        json_depth_check(data, max_depth=max_depth)
        if SUSPECT_ESCAPE.search(text):
            json_text_check(data)
        return data
