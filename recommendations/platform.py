"""Platform health: version, uptime, readiness of database, Redis and artifacts."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.db import connection

_STARTED = time.time()


def platform_uptime_s() -> float:
    return round(time.time() - _STARTED, 3)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - report any driver error as "not ready"
        return f"database: {exc.__class__.__name__}: {exc}"


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"redis: {exc.__class__.__name__}: {exc}"


def artifact_manifests() -> dict[str, dict]:
    """Every manifest.json under the artifacts dir, keyed by its relative folder."""
    import json

    root = Path(settings.ML_ARTIFACTS_DIR)
    found: dict[str, dict] = {}
    if not root.exists():
        return found
    for manifest in sorted(root.rglob("manifest.json")):
        try:
            found[str(manifest.parent.relative_to(root))] = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            found[str(manifest.parent.relative_to(root))] = {"error": str(exc)}
    return found


def _check_artifacts() -> str | None:
    if not artifact_manifests():
        return f"artifacts: no manifest under {settings.ML_ARTIFACTS_DIR} (run `python manage.py train`)"
    return None


def platform_readiness() -> dict:
    """Run every check; ``ready`` is true only when none failed."""
    problems = [p for p in (_check_database(), _check_redis(), _check_artifacts()) if p]
    return {"ready": not problems, "not_ready": problems,
            "checks": {"database": "ok" if not any(p.startswith("database") for p in problems) else "failed",
                       "redis": "not configured" if not settings.REDIS_URL else
                       ("failed" if any(p.startswith("redis") for p in problems) else "ok"),
                       "artifacts": "failed" if any(p.startswith("artifacts") for p in problems) else "ok"}}
