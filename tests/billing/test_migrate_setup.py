"""`manage.py migrate_setup`: on a fresh database dj-stripe's tables come from its models, the rest from migrate.

Each test migrates its own SQLite file in a subprocess (the test database is built with --nomigrations).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# every djstripe model's concrete columns, read in the subprocess's Django (the models bin/setup creates)
COLUMNS = """
import json, django
django.setup()
from django.apps import apps
print(json.dumps({m._meta.db_table: sorted(f.column for f in m._meta.local_concrete_fields)
                  for m in apps.get_app_config("djstripe").get_models()
                  if m._meta.managed and not m._meta.proxy}))
"""


def _manage(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SQLITE_PATH=str(path), DJANGO_SETTINGS_MODULE="apex_site.settings")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _schema(path: Path) -> dict[str, tuple[list, list, list]]:
    """Per table: columns (name, type, not null, default, pk), foreign keys and indexes (columns, unique)."""
    con = sqlite3.connect(path)
    out = {}
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
        if table == "django_migrations":
            continue
        cols = sorted(tuple(r[1:]) for r in con.execute(f'PRAGMA table_info("{table}")'))
        fks = sorted(tuple(r[2:5]) for r in con.execute(f'PRAGMA foreign_key_list("{table}")'))
        idx = sorted((tuple(x[2] for x in con.execute(f'PRAGMA index_info("{r[1]}")')), r[2])
                     for r in con.execute(f'PRAGMA index_list("{table}")'))
        out[table] = (cols, fks, idx)
    con.close()
    return out


def test_fresh_database_gets_djstripe_tables_and_every_migration_recorded(tmp_path: Path) -> None:
    import json

    db = tmp_path / "fresh.sqlite3"
    first = _manage(db, "manage.py", "migrate_setup", "-v", "1")
    assert first.returncode == 0, first.stderr
    assert "djstripe: tables created from its models" in first.stdout
    check = _manage(db, "manage.py", "migrate", "--check", "-v", "0")  # nothing left to apply
    assert check.returncode == 0, check.stdout + check.stderr
    expected = json.loads(_manage(db, "-c", COLUMNS).stdout)
    con = sqlite3.connect(db)
    for table, columns in expected.items():
        assert sorted(r[1] for r in con.execute(f'PRAGMA table_info("{table}")')) == columns, table
    recorded = {name for (name,) in con.execute("SELECT name FROM django_migrations WHERE app = 'djstripe'")}
    con.close()
    import djstripe.migrations

    assert recorded == {p.stem for p in Path(djstripe.migrations.__file__).parent.glob("0*.py")}
    # a second run finds dj-stripe migrated and leaves it to the ordinary migrate
    again = _manage(db, "manage.py", "migrate_setup", "-v", "1")
    assert again.returncode == 0, again.stderr
    assert "djstripe: tables created" not in again.stdout


@pytest.mark.slow
def test_schema_matches_the_replayed_migrations(tmp_path: Path) -> None:
    """The whole schema equals the one plain `migrate` builds by replaying every migration (~2 minutes)."""
    fast, slow = tmp_path / "fast.sqlite3", tmp_path / "slow.sqlite3"
    assert _manage(fast, "manage.py", "migrate_setup", "-v", "0").returncode == 0
    assert _manage(slow, "manage.py", "migrate", "-v", "0").returncode == 0
    assert _schema(fast) == _schema(slow)
