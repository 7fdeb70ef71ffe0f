"""The public development key never meets a real service, and bin/run serves production settings there (issue 14).

Settings are loaded in a subprocess with a clean environment (no PYTEST_VERSION, which keeps the development
defaults for the test run itself); bin/run is started for real against the test database.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from email.message import Message
from pathlib import Path

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = "dev-only-insecure-key-never-use-in-production"
STRIPPED = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "PYTEST_VERSION", "PYTEST_CURRENT_TEST",
            "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"}
PG = "postgres://u@127.0.0.1:5432/x"


def _clean_env(**env: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in STRIPPED}, **env}


def _settings(expr: str, **env: str) -> subprocess.CompletedProcess:
    code = ("import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'apex_site.settings'); "
            f"from django.conf import settings; print({expr})")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(**env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("service", [{"DATABASE_URL": PG}, {"REDIS_URL": "redis://127.0.0.1:6379/0"}],
                         ids=["database", "redis"])
def test_a_real_service_without_a_secret_key_refuses_to_start(service):
    out = _settings("settings.DEBUG", **service)
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr


def test_a_real_service_refuses_the_development_key_even_with_debug_on():
    for env in ({"DEBUG": "true"}, {"DEBUG": "true", "SECRET_KEY": DEV_KEY}):
        out = _settings("settings.DEBUG", DATABASE_URL=PG, **env)
        assert out.returncode != 0 and "development key is public" in out.stderr, env


def test_production_refuses_the_development_key_passed_explicitly():
    out = _settings("settings.DEBUG", DEBUG="false", SECRET_KEY=DEV_KEY)
    assert out.returncode != 0 and "SECRET_KEY must be set" in out.stderr


def test_debug_defaults_off_with_real_services():
    out = _settings("settings.DEBUG, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE",
                    DATABASE_URL=PG, SECRET_KEY="k" * 60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]


def test_developers_opt_in_to_debug_with_services_and_their_own_key():
    out = _settings("settings.DEBUG", DATABASE_URL=PG, SECRET_KEY="k" * 60, DEBUG="true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_embedded_default_keeps_debug_and_the_development_key():
    out = _settings("settings.DEBUG, settings.SECRET_KEY")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", DEV_KEY]


# --- bin/run, for real ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str]) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def bin_run_with_postgresql(tmp_path, transactional_db):  # noqa: ANN001, ANN201
    """bin/run on the test database, with no SECRET_KEY and no DEBUG in its environment."""
    from tests.events.processes import database_url, wait_for

    port, key_file, log = _free_port(), tmp_path / "secret_key", tmp_path / "run.log"
    env = _clean_env(DATABASE_URL=database_url(), SECRET_KEY_FILE=str(key_file), PORT=str(port),
                     APEX_THREADS="1", LOG_LEVEL="WARNING")
    with log.open("ab") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "bin" / "run")], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return _get(base + "/v1/platform/status", {"X-Forwarded-Proto": "https"})[0] > 0
        except OSError:
            return False

    try:
        wait_for(answers, timeout=120, interval=0.3, what="bin/run to answer")
        yield base, key_file
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass  # it had exited already


@pytest.mark.services
def test_bin_run_with_a_real_database_rejects_jwts_forged_with_the_development_key(bin_run_with_postgresql, staff):
    base, key_file = bin_run_with_postgresql
    now = int(time.time())
    forged = jwt.encode({"token_type": "access", "exp": now + 600, "iat": now, "jti": uuid.uuid4().hex,
                         "user_id": str(staff.pk)}, DEV_KEY, algorithm="HS256")
    https = {"X-Forwarded-Proto": "https"}  # production settings redirect plain HTTP (a TLS proxy sets this)
    status, _, body = _get(base + "/v1/auth/me", {**https, "Authorization": f"Bearer {forged}"})
    assert status == 401, body[:300]
    # the key bin/run made for itself: private, not the public one
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 50 and DEV_KEY not in key_file.read_text()
    # production settings: no debug page, a JSON 404
    status, headers, body = _get(base + "/v1/no-such-thing", https)
    assert status == 404 and headers["Content-Type"].startswith("application/json"), body[:300]
    assert b"DEBUG = True" not in body


def test_check_deploy_is_clean_with_real_services_and_debug_left_unset():
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                         env=_clean_env(DATABASE_URL=PG, REDIS_URL="redis://127.0.0.1:6379/0",
                                        SECRET_KEY=secrets.token_urlsafe(50)),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
