"""Import benchmark: ml-latest-small and ml-100k (+ TMDB/HetRec enrichment) into fresh SQLite/PostgreSQL databases.

    python benchmarks/imports.py                      # SQLite; PostgreSQL too when DATABASE_URL is set
    python benchmarks/imports.py --postgres postgres://postgres@127.0.0.1:5432/postgres

Each scenario runs in its own process against a fresh database (schema created without the slow dj-stripe
migrations; on PostgreSQL the catalog's GIN search index is created too, so its upkeep is timed). Writes
docs/IMPORT_BENCHMARK.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SCENARIOS = {
    "ml-latest-small": [("import_movielens", [str(ROOT / "data" / "ml-latest-small")]),
                        ("import_movielens (2nd run, no changes)", [str(ROOT / "data" / "ml-latest-small")]),
                        ("import_tmdb", ["--path", str(SHARED / "tmdb"), "--directors", str(SHARED / "hetrec2011")]),
                        ("build_search_index", [])],
    "ml-100k": [("import_movielens", [str(SHARED / "ml-100k")]),
                ("import_movielens (2nd run, no changes)", [str(SHARED / "ml-100k")]),
                ("import_tmdb", ["--path", str(SHARED / "tmdb"), "--directors", str(SHARED / "hetrec2011")])],
}


def _worker(scenario: str) -> None:
    """Runs inside a child process whose environment already points at a fresh database."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")
    import django
    from django.conf import settings

    django.setup()

    class _NoMigrations(dict):
        def __contains__(self, item: object) -> bool:
            return True

        def __getitem__(self, item: str) -> None:
            return None

    settings.MIGRATION_MODULES = _NoMigrations()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)
    if connection.vendor == "postgresql":
        import importlib

        gin = importlib.import_module("catalog.migrations.0002_movie_search_gin_postgresql")
        with connection.schema_editor() as editor:
            gin.create_index(None, editor)
    from catalog.models import Credit, Movie, Rating

    for label, args in SCENARIOS[scenario]:
        command = label.split(" ")[0]
        if command == "import_tmdb" and not (SHARED / "tmdb").exists():
            continue
        if command == "build_search_index" and (connection.vendor != "sqlite"
                                                 or not os.environ.get("APEX_BENCH_SEARCH_INDEX")):
            continue  # the embedding time does not depend on the database
        started, cpu = time.perf_counter(), time.process_time()
        call_command(command, *args, "--quiet", stdout=open(os.devnull, "w"))  # noqa: SIM115
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(json.dumps({"scenario": scenario, "step": label, "seconds": round(seconds, 2), "cpu": round(cpu, 2),
                          "load": round(os.getloadavg()[0], 1),
                          "movies": Movie.objects.count(), "ratings": Rating.objects.count(),
                          "credits": Credit.objects.count(), "backend": connection.vendor}), flush=True)


def _run(scenario: str, env: dict[str, str]) -> list[dict]:
    out = subprocess.run([sys.executable, __file__, "--worker", scenario], env=env, capture_output=True, text=True,
                         check=False, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{scenario} failed:\n{out.stderr[-3000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _postgres_env(url: str, name: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]
    return {**os.environ, "DATABASE_URL": f"{base}/{name}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--postgres", default=os.environ.get("DATABASE_URL", ""),
                        help="PostgreSQL URL of a database we may connect to (benchmark databases are created)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "IMPORT_BENCHMARK.md"))
    parser.add_argument("--search-index", action="store_true",
                        help="also time build_search_index on ml-latest-small (minutes on 2 busy cores)")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    scenarios = [s for s in SCENARIOS if s != "ml-100k" or (SHARED / "ml-100k").exists()]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="apex-bench-") as tmp:
        for scenario in scenarios:
            env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
            env["SQLITE_PATH"] = str(Path(tmp) / f"{scenario}.sqlite3")
            env["ML_ARTIFACTS_DIR"] = str(Path(tmp) / "artifacts")
            env["APEX_BENCH_SEARCH_INDEX"] = "1" if args.search_index else ""
            results += _run(scenario, env)
            if args.postgres:
                results += _run(scenario, _postgres_env(args.postgres, f"apex_bench_{scenario.replace('-', '_')}"))
    _write(results, Path(args.out))


def _write(results: list[dict], out: Path) -> None:
    lines = [
        "# Import benchmark",
        "",
        f"Generated by `python benchmarks/imports.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, {platform.machine()}. Each scenario starts "
        "from an empty database; commands run with `--quiet`. `seconds` is the wall-clock time of the management "
        "command, `cpu s` the CPU time of the Python process (the database server's own CPU is not in it), `load` "
        "the 1-minute load average when the step ended: the machine is shared, so wall-clock times vary with it.",
        "",
        "| backend | dataset | step | seconds | cpu s | load | movies | ratings | director/cast credits |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['backend']} | {r['scenario']} | {r['step']} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
              f"{r['load']:.1f} | {r['movies']:,} | "
              f"{r['ratings']:,} | {r['credits']:,} |" for r in results]
    lines += ["", "ml-100k items are mapped to MovieLens ids by exact title against the embedded ml-latest-small "
              "(unmatched items get 10,000,000 + item id); `import_tmdb` reads ../shared/data/tmdb and "
              "../shared/data/hetrec2011 (directors whose IMDb id agrees with links.csv)."]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
