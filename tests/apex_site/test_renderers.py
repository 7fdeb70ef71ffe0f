"""API responses rendered by orjson (apex_site/renderers.py) read exactly as DRF's own renderer wrote them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict

from apex_site.renderers import ORJSONRenderer

PAYLOAD = {
    "text": "Amélie — 東京物語", "int": 7, "float": 0.1, "none": None, "bool": True, "list": [1, "a", None],
    "nested": {"k": [{"deep": 1.5}]}, 3: "int key", "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "utc": dt.datetime(2024, 1, 2, 3, 4, 5, 600, tzinfo=dt.UTC), "naive": dt.datetime(2024, 1, 2, 3, 4, 5),
    "date": dt.date(2024, 1, 2), "decimal": Decimal("4.50"), "lazy": gettext_lazy("Sign in"),
    "numpy": np.float32(0.25), "array": np.arange(3), "delta": dt.timedelta(seconds=90), "tuple": (1, 2),
}


def test_orjson_renders_what_drf_renders() -> None:
    ours, theirs = ORJSONRenderer().render(PAYLOAD), JSONRenderer().render(PAYLOAD)
    assert json.loads(ours) == json.loads(theirs)
    assert json.loads(ours)["utc"] == "2024-01-02T03:04:05.000600Z"
    ordered = ReturnDict([("b", 1), ("a", 2)], serializer=None)
    assert ORJSONRenderer().render(ordered) == b'{"b":1,"a":2}'  # compact, in order, like DRF's


def test_an_indented_response_and_an_empty_one_are_drfs() -> None:
    indented = ORJSONRenderer().render({"a": [1]}, "application/json; indent=4")
    assert indented == JSONRenderer().render({"a": [1]}, "application/json; indent=4")
    assert b"\n    " in indented
    assert ORJSONRenderer().render(None) == b""


def test_a_non_finite_float_renders_as_null_instead_of_failing() -> None:
    assert json.loads(ORJSONRenderer().render({"x": float("nan"), "y": float("inf")})) == {"x": None, "y": None}


@pytest.mark.django_db
def test_the_api_answers_with_orjson(client) -> None:  # noqa: ANN001
    response = client.get("/v1/movies")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert isinstance(response.accepted_renderer, ORJSONRenderer)
    assert json.loads(response.content)["results"] == []
