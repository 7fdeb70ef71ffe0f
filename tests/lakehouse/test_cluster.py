"""Bronze -> silver -> gold on a two-worker standalone cluster (bin/spark-cluster) equals the local[2] run.

Slow (a master, two workers and two pipeline processes: minutes on a shared 2-core machine), so it is
deselected by default: ``pytest -m "spark and slow" tests/lakehouse/test_cluster.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import tables as T
from lakehouse.spark import java_available

pytestmark = [pytest.mark.spark, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-01T03:00:00+00:00"
ALL_TABLES = (*T.BRONZE_TABLES, *T.SILVER_TABLES, *T.GOLD_TABLES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A master and two workers from pyspark's launch script, on free loopback ports; stopped afterwards."""
    if not java_available():
        pytest.skip("needs Java 17 for Spark")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "SPARK_CLUSTER_DIR": str(tmp_path_factory.mktemp("spark-cluster")),
        "SPARK_IDENT_STRING": f"apex-test-{uuid.uuid4().hex[:8]}",
        "SPARK_MASTER_PORT": str(_free_port()),
        "SPARK_MASTER_WEBUI_PORT": str(_free_port()),
        "SPARK_WORKER_WEBUI_PORT": str(_free_port()),
        "SPARK_WORKER_MEMORY": "1g",
    }
    script = str(REPO / "bin" / "spark-cluster")
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=600)
    try:
        assert started.returncode == 0, started.stderr
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)


def _events(folder: Path) -> Path:
    """A small export: every kind, a duplicate event id and a few rows that break the contract."""
    folder.mkdir()
    rows = [
        {
            "event_id": f"e{i % 40}",
            "user_id": 1 + i % 7,
            "movie_id": 1 + (i * 13) % 300,
            "kind": ("impression", "click", "rating", "watch", "watchlist", "bogus")[i % 6],
            "value": (1 + i % 10) / 2 if i % 6 == 2 else None,
            "created_at": f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00",
            "propensity": 0.25 if i % 6 == 0 else None,
        }
        for i in range(60)
    ]
    (folder / "events-1.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def _run(root: Path, master: str, ml100k: Path, ml_small: Path, tmdb: Path, events: Path) -> None:
    env = {
        **os.environ,
        "SPARK_MASTER_URL": master,
        "SPARK_SHUFFLE_PARTITIONS": "2",
        "SPARK_FAST_JVM": "1",
        "SPARK_DRIVER_MEMORY": "1g",
        "SPARK_EXECUTOR_MEMORY": "1g",
        "LAKEHOUSE_TMDB_DIR": str(tmdb),
        "LAKEHOUSE_REFERENCE_DATASET": str(ml_small),
    }
    args = ["--root", str(root), "--dataset", str(ml100k), "--dataset", str(ml_small), "--events-dir", str(events)]
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse", "run", *args, "--events-dataset", str(ml_small.name), "--as-of", AS_OF],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def _nightly(root: Path, master: str, ml100k: Path, ml_small: Path, tmdb: Path, events: Path) -> None:
    """The nightly beat job's lakehouse steps (``manage.py run_lakehouse``, what ``run_nightly_pipeline`` runs),
    unchanged, with only SPARK_MASTER_URL pointing it at the cluster (a throw-away SQLite for its run records)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "benchmarks.support.server_settings",  # the schema without migrations
        "DEBUG": "true",
        "SQLITE_PATH": str(root.parent / "nightly.sqlite3"),
        "SPARK_MASTER_URL": master,
        "SPARK_SHUFFLE_PARTITIONS": "2",
        "SPARK_FAST_JVM": "1",
        "SPARK_DRIVER_MEMORY": "1g",
        "SPARK_EXECUTOR_MEMORY": "1g",
        "LAKEHOUSE_ROOT": str(root),
        "LAKEHOUSE_EVENTS_DIR": str(events),
        "LAKEHOUSE_DATASETS": f"{ml100k},{ml_small}",
        "APEX_DATASET": ml_small.name,
        "LAKEHOUSE_TMDB_DIR": str(tmdb),
        "LAKEHOUSE_REFERENCE_DATASET": str(ml_small),
    })  # fmt: skip
    for args in (["migrate", "--run-syncdb", "-v", "0"], ["run_lakehouse", "--steps", "bronze,silver,gold"]):
        done = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split()[:2] == ["bronze", "succeeded"], done.stdout


def _rows(root: Path, table: str) -> list[str]:
    from deltalake import DeltaTable

    data = DeltaTable(str(root / table)).to_pyarrow_table().to_pylist()
    return sorted(json.dumps(r, default=str, sort_keys=True) for r in data)


def test_the_two_worker_cluster_writes_the_same_tables_as_local(
    cluster: str, ml100k_slice: Path, ml_small_slice: Path, tmdb_slice: Path, tmp_path: Path
) -> None:
    events = _events(tmp_path / "events")
    inputs = (ml100k_slice, ml_small_slice, tmdb_slice, events)
    _run(tmp_path / "local", "local[2]", *inputs)
    _run(tmp_path / "cluster", cluster, *inputs)
    for table in ALL_TABLES:
        local, remote = _rows(tmp_path / "local", table), _rows(tmp_path / "cluster", table)
        assert local == remote, table
    assert len(_rows(tmp_path / "cluster", T.QUARANTINE)) > 0  # the contract rejected rows on the executors too
    assert len(_rows(tmp_path / "cluster", T.GOLD_USER_SEQUENCES)) > 0


def test_the_nightly_job_runs_unchanged_against_the_cluster(
    cluster: str, ml100k_slice: Path, ml_small_slice: Path, tmdb_slice: Path, tmp_path: Path
) -> None:
    """The beat job's steps on the cluster write the gold tables a local run writes (only the run time differs,
    and gold holds none of it)."""
    events = _events(tmp_path / "events")
    _run(tmp_path / "local", "local[2]", ml100k_slice, ml_small_slice, tmdb_slice, events)
    _nightly(tmp_path / "nightly", cluster, ml100k_slice, ml_small_slice, tmdb_slice, events)
    for table in T.GOLD_TABLES:
        assert _rows(tmp_path / "local", table) == _rows(tmp_path / "nightly", table), table
    assert len(_rows(tmp_path / "nightly", T.GOLD_ITEM_COOCCURRENCE)) > 0
