"""The API's JSON parser: DRF's, plus a bounded nesting depth and no NUL or lone surrogate in any string or key.

Deep JSON used to end in RecursionError (500), and NUL / lone surrogates reached PostgreSQL (500).
Both are now a 400 naming the offending field by its path (``events.3.idempotency_key``).
``text_problem`` is the one rule for text, shared with ``apex_site.input_guard`` (path, query, forms).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

DEFAULT_MAX_DEPTH = 32


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


def json_check(data: Any, *, max_depth: int) -> None:
    """Raise ParseError for containers nested deeper than ``max_depth`` or a bad string or key (iterative walk)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise ParseError({path or "body": [problem]})
            continue
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        if depth > max_depth:
            raise ParseError(f"JSON nested deeper than {max_depth} levels.")
        for key, child in items:
            if isinstance(key, str) and (problem := text_problem(key)):
                raise ParseError({_join(path, key): [f"key {problem}"]})
            stack.append((child, _join(path, key), depth + 1))


class StrictJSONParser(JSONParser):
    """JSONParser that refuses deep nesting (``API_JSON_MAX_DEPTH``), NUL and lone surrogates with 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        max_depth = getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {max_depth} levels.") from exc
        json_check(data, max_depth=max_depth)
        return data
