"""Query parameters: a serializer base that refuses a parameter sent empty (``?sort=``) instead of ignoring it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class QueryParamsSerializer(serializers.Serializer):
    """DRF treats ``?limit=`` on an optional field as absent and uses the default; a client that sent an empty
    value made a mistake, so it gets a 400 naming the parameter (fields with ``allow_blank`` excepted)."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "getlist"):
            blank = {name: ["This parameter may not be empty."] for name, field in self.fields.items()
                     if name in data and "" in data.getlist(name) and not getattr(field, "allow_blank", False)}
            if blank:
                raise serializers.ValidationError(blank)
        return super().to_internal_value(data)
