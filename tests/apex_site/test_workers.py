"""bin/run's worker count (apex_site/workers.py): one per core with the real services, bounded by memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from apex_site.workers import DEFAULT_WORKER_MB, web_workers

SERVICES = {"DATABASE_URL": "postgres://db/apex", "REDIS_URL": "redis://cache/0"}


def test_one_worker_per_core_with_postgresql_and_redis() -> None:
    assert web_workers(SERVICES, cores=2, available_mb=20_000) == 2
    assert web_workers(SERVICES, cores=16, available_mb=None) == 16


def test_memory_bounds_the_count_and_never_below_one() -> None:
    assert web_workers(SERVICES, cores=16, available_mb=4 * DEFAULT_WORKER_MB + 10) == 4
    assert web_workers(SERVICES, cores=16, available_mb=100) == 1
    assert web_workers({**SERVICES, "APEX_WORKER_MB": "500"}, cores=16, available_mb=2_000) == 4


def test_the_embedded_default_runs_one_process() -> None:
    assert web_workers({}, cores=8, available_mb=64_000) == 1
    assert web_workers({"DATABASE_URL": SERVICES["DATABASE_URL"]}, cores=8, available_mb=64_000) == 1
    assert web_workers({"REDIS_URL": SERVICES["REDIS_URL"]}, cores=8, available_mb=64_000) == 1


def test_web_concurrency_wins_and_a_bad_value_is_named() -> None:
    assert web_workers({"WEB_CONCURRENCY": "3"}, cores=1, available_mb=10) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
            web_workers({**SERVICES, "WEB_CONCURRENCY": bad}, cores=2, available_mb=None)
    with pytest.raises(ValueError, match="APEX_WORKER_MB"):
        web_workers({**SERVICES, "APEX_WORKER_MB": "lots"}, cores=2, available_mb=4_000)


def test_the_command_bin_run_calls_prints_the_count_or_the_error() -> None:
    ok = subprocess.run([sys.executable, "-m", "apex_site.workers"], env={"WEB_CONCURRENCY": "5"},
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == "5"
    bad = subprocess.run([sys.executable, "-m", "apex_site.workers"], env={"WEB_CONCURRENCY": "x"},
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "WEB_CONCURRENCY='x' is not a positive integer" in bad.stderr
