"""Settings come from the environment; bad values and missing production secrets are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apex_site.env import env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    # PYTEST_VERSION too: it keeps the development defaults for the test run itself (apex_site/settings.py)
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "PYTEST_VERSION"}}
    code = f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','apex_site.settings'); " \
           f"from django.conf import settings; print({expr})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_env_bool_refuses_values_it_cannot_read(monkeypatch):
    monkeypatch.setenv("FLAG", "yes please")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", False)
    monkeypatch.setenv("FLAG", "off")
    assert env_bool("FLAG", True) is False


def test_env_int_refuses_non_numbers(monkeypatch):
    monkeypatch.setenv("COUNT", "three")
    with pytest.raises(ImproperlyConfigured, match="COUNT"):
        env_int("COUNT", 1)


def test_embedded_default_needs_nothing_installed():
    out = _settings_in_subprocess({}, "settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
                                      "settings.CHANNEL_LAYERS['default']['BACKEND'], settings.CELERY_TASK_ALWAYS_EAGER")
    assert out.returncode == 0, out.stderr
    assert "sqlite3" in out.stdout and "LocMemCache" in out.stdout
    assert "InMemoryChannelLayer" in out.stdout and "True" in out.stdout


def test_urls_switch_in_postgresql_and_redis():
    out = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0",
         "SECRET_KEY": "k" * 60},  # real services refuse the public development key
        "settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
        "settings.CHANNEL_LAYERS['default']['BACKEND'], settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER")
    assert out.returncode == 0, out.stderr
    assert "postgresql" in out.stdout and "RedisCache" in out.stdout
    assert "RedisChannelLayer" in out.stdout and "redis://127.0.0.1:6379/0" in out.stdout and "False" in out.stdout


def test_production_refuses_to_start_without_secret_key():
    out = _settings_in_subprocess({"DEBUG": "false"}, "settings.DEBUG")
    assert out.returncode != 0
    assert "SECRET_KEY must be set" in out.stderr


def test_threads_are_pinned_to_one_per_process_by_default():
    out = _settings_in_subprocess({}, "settings.APEX_THREADS, os.environ['OPENBLAS_NUM_THREADS'] if "
                                      "'OPENBLAS_NUM_THREADS' in os.environ else None")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_file_is_valid_and_has_the_whole_stack():
    compose = _compose_command()
    if compose is None:
        pytest.skip("no docker compose client installed")
    out = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
                         cwd=ROOT, env={**os.environ, "SECRET_KEY": "compose-check"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    core = {"postgres", "redis", "web", "worker", "beat"}
    assert core <= services
    # the optional Spark cluster (profile "spark"); some compose clients list profile services here too
    assert services - core <= {"spark-master", "spark-worker-1", "spark-worker-2"}
