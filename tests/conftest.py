"""The shared test cast (STYLE.md §6) and environment-aware markers."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    have_services = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    have_java = shutil.which("java") is not None
    skip_services = pytest.mark.skip(reason="needs DATABASE_URL/REDIS_URL (real PostgreSQL/Redis)")
    skip_spark = pytest.mark.skip(reason="needs Java for local Spark")
    for item in items:
        if "services" in item.keywords and not have_services:
            item.add_marker(skip_services)
        if "spark" in item.keywords and not have_java:
            item.add_marker(skip_spark)


@pytest.fixture(autouse=True)
def _fast_hasher(settings: "settings") -> None:  # type: ignore[valid-type]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
