"""Fast shape checks for posted events (batches of 1,000 must parse in milliseconds, not DRF's ~0.5 ms each).

Errors are keyed by field (``"value"``), or by position and field in a batch (``"events.3.value"``);
the serializers in ``api.py`` describe the same shape for the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from functools import partial
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Event

KINDS = frozenset(Event.Kind.values)
TEXT_LIMITS = {"policy_version": 64, "request_id": 64, "external_user": 128}
MOVIE_ID_MAX = 2**31 - 1  # the column is a 32-bit integer; larger ids overflow the driver (500) instead of matching none


def _integer(value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("A valid integer is required.")
    number = int(value)  # raises ValueError for "x"
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"Must be between {low} and {high}.")
    return number


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("A valid number is required.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("A finite number is required.")
    return number


def _datetime(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError("Datetime has wrong format. Use ISO 8601, e.g. 2026-11-26T15:00:00Z.")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("Not a valid string.")
    if len(value) > limit:
        raise ValueError(f"Ensure this field has no more than {limit} characters.")
    return value


def _kind(value: Any) -> str:
    if not isinstance(value, str) or value not in KINDS:
        raise ValueError(f'"{value}" is not a valid choice; expected one of {", ".join(sorted(KINDS))}.')
    return value


def _key(value: Any) -> str:
    key = _text(value, 128)
    if not key:
        raise ValueError("This field may not be blank.")
    return key


def _row(raw: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """One event's fields, or per-field messages."""
    if not isinstance(raw, dict):
        return {}, {"non_field_errors": "Expected an object with movie_id, kind and idempotency_key."}
    row: dict[str, Any] = {}
    errors: dict[str, str] = {}
    movie_id = lambda v: _integer(v, 1, MOVIE_ID_MAX)  # noqa: E731
    for field, check in (("movie_id", movie_id), ("kind", _kind), ("idempotency_key", _key)):
        if field not in raw or raw[field] is None:
            errors[field] = "This field is required."
            continue
        try:
            row[field] = check(raw[field])
        except ValueError as exc:
            errors[field] = str(exc)
    optional: dict[str, Callable[[Any], Any]] = {
        "value": _number, "propensity": _number, "occurred_at": _datetime,
        "position": lambda v: None if v is None else _integer(v, 0, 10_000),
        **{field: partial(_text, limit=limit) for field, limit in TEXT_LIMITS.items()}}
    for field, check in optional.items():
        try:
            row[field] = check(raw.get(field))
        except ValueError as exc:
            errors[field] = str(exc)
    return row, errors


def events_parse(raw: Any, *, batch: bool, max_batch: int) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Parse one event (``batch=False``) or ``{"events": [...]}``; returns (rows, errors)."""
    if not batch:
        row, row_errors = _row(raw)
        return [row], {field: [msg] for field, msg in row_errors.items()}
    items = raw.get("events") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        return [], {"events": ["Expected a non-empty list of events."]}
    if len(items) > max_batch:
        return [], {"events": [f"Ensure this field has no more than {max_batch} elements."]}
    rows: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, item in enumerate(items):
        row, row_errors = _row(item)
        rows.append(row)
        errors.update({f"events.{i}.{field}": [msg] for field, msg in row_errors.items()})
    return rows, errors
