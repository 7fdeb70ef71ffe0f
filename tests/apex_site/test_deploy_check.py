"""Production settings pass Django's deployment checklist, and refuse to start without a SECRET_KEY."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY",
                                                         "DJANGO_ALLOW_ASYNC_UNSAFE", "PYTEST_VERSION"}}
    # browser tests set DJANGO_ALLOW_ASYNC_UNSAFE; PYTEST_VERSION keeps the development defaults (settings.py)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_in_production():
    out = _manage("check", "--deploy", "--fail-level", "WARNING",
                  env={"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_manage_py_refuses_to_start_in_production_without_a_secret_key():
    out = _manage("check", env={"DEBUG": "false"})
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr
