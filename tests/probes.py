"""Probe counts for docs/RELIABILITY.md: standing-suite tests record what they sent and what came back.

A test takes the ``probe`` fixture and calls ``probe.record("name", sent=..., server_errors=..., ...)``
once per probe family. When ``APEX_PROBE_REPORT`` names a file (``benchmarks/reliability.py`` sets it),
each record is appended to it as one JSON line; otherwise records are only kept on the object, so the
tests behave the same in a plain ``pytest`` run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

REPORT_ENV = "APEX_PROBE_REPORT"


@dataclass
class Probe:
    """Collects the probe records of one test."""

    test: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def record(self, name: str, *, sent: int, server_errors: int = 0, failures: int = 0, **extra: Any) -> None:
        """One probe family: ``sent`` requests (or events, or faults), ``server_errors`` 5xx answers,
        ``failures`` other violations (schema mismatch, lost or doubled event, wrong status); ``extra``
        holds any further counts worth printing (e.g. ``accepted=``, ``stored=``, ``applied=``)."""
        row = {"test": self.test, "probe": name, "sent": int(sent), "server_errors": int(server_errors),
               "failures": int(failures), "extra": extra, "at": time.time()}
        self.records.append(row)
        path = os.environ.get(REPORT_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, default=str) + "\n")
