"""Typed reads from the ``sources`` mapping that every ``build_<table>`` job receives.

The jobs share one signature, ``(spark, sources)``, so the pipeline can run them from a table; the values under
the keys differ (frames, the run's time, a dataset name). These accessors say in one place which kind each key
holds, so the jobs are type-checked without a union at every use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from pyspark.sql import DataFrame

Sources = Mapping[str, object]


def frame(sources: Sources, key: str) -> DataFrame:
    """The DataFrame under ``key`` (an input table or an earlier job's output)."""
    return cast(DataFrame, sources[key])


def instant(sources: Sources, key: str) -> datetime:
    """The datetime under ``key`` (``ingested_at``, ``as_of``)."""
    return cast(datetime, sources[key])


def text(sources: Sources, key: str) -> str:
    """The string under ``key`` (``events_dataset``)."""
    return cast(str, sources[key])


def integer(sources: Sources, key: str, default: int) -> int:
    """The integer under ``key``, or ``default`` when the key is absent."""
    return int(cast(int, sources.get(key, default)))
