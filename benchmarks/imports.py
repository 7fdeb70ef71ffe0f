"""Import benchmark: ml-latest-small and ml-100k (+ TMDB/HetRec enrichment) into fresh SQLite/PostgreSQL databases.

    python benchmarks/imports.py                      # SQLite; PostgreSQL too when DATABASE_URL is set
    python benchmarks/imports.py --postgres postgres://postgres@127.0.0.1:5432/postgres
    python benchmarks/imports.py --postgres URL --synthetic 25m [--synthetic-dir var/synth-25m] [--only-synthetic]

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
SYNTH_DIR = os.environ.get("APEX_BENCH_SYNTH_DIR", "")
if SYNTH_DIR:  # a MovieLens-layout folder from `python -m ml_core synth` (PostgreSQL only: COPY + set-based upsert)
    SCENARIOS[f"synthetic-{Path(SYNTH_DIR).name}"] = [("import_movielens", [SYNTH_DIR]),
                                                      ("import_movielens (2nd run, no changes)", [SYNTH_DIR])]


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
    parser.add_argument("--synthetic", choices=["1m", "10m", "25m", "32m"], default=None,
                        help="also import a synthetic MovieLens-shaped set of this size into PostgreSQL")
    parser.add_argument("--synthetic-dir", default=None, help="where it is (generated there when missing)")
    parser.add_argument("--only-synthetic", action="store_true", help="skip the real datasets")
    parser.add_argument("--search-index", action="store_true",
                        help="also time build_search_index on ml-latest-small (minutes on 2 busy cores)")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    scenarios = [] if args.only_synthetic else [s for s in SCENARIOS
                                                 if s != "ml-100k" or (SHARED / "ml-100k").exists()]
    results: list[dict] = []
    if args.synthetic:
        if not args.postgres:
            raise SystemExit("--synthetic needs --postgres (or DATABASE_URL)")
        folder = Path(args.synthetic_dir or ROOT / "var" / f"synth-{args.synthetic}")
        if not (folder / "ratings.csv").exists():
            subprocess.run([sys.executable, "-m", "ml_core", "synth", "--scale", args.synthetic, "--out", str(folder),
                            "--no-progress"], check=True, cwd=ROOT)
        env = {**os.environ, "APEX_BENCH_SYNTH_DIR": str(folder)}
        name = f"synthetic-{folder.name}"
        results += _run(name, {**_postgres_env(args.postgres, "apex_bench_synthetic"), "APEX_BENCH_SYNTH_DIR":
                               env["APEX_BENCH_SYNTH_DIR"]})
    with tempfile.TemporaryDirectory(prefix="apex-bench-") as tmp:
        for scenario in scenarios:
            env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
            env["SQLITE_PATH"] = str(Path(tmp) / f"{scenario}.sqlite3")
            env["ML_ARTIFACTS_DIR"] = str(Path(tmp) / "artifacts")
            env["APEX_BENCH_SEARCH_INDEX"] = "1" if args.search_index else ""
            results += _run(scenario, env)
            if args.postgres:
                results += _run(scenario, _postgres_env(args.postgres, f"apex_bench_{scenario.replace('-', '_')}"))
    _write(results, Path(args.out), only_synthetic=args.only_synthetic)


def _write(results: list[dict], out: Path, *, only_synthetic: bool = False) -> None:
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
              "../shared/data/hetrec2011 (directors whose IMDb id agrees with links.csv).", ""]
    synthetic = _synthetic_section([r for r in results if r["scenario"].startswith("synthetic-")])
    if only_synthetic and out.exists():
        text = out.read_text()
        if SYN_START in text:
            text = text[:text.index(SYN_START)] + text[text.index(SYN_END) + len(SYN_END) + 1:]
        out.write_text(text.rstrip("\n") + "\n\n" + synthetic)
        print(synthetic)
        return
    out.write_text("\n".join(lines) + "\n" + synthetic)
    print("\n".join(lines) + "\n" + synthetic)


SYN_START, SYN_END = "<!-- synthetic:start -->", "<!-- synthetic:end -->"


def _synthetic_section(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = [SYN_START, "## Synthetic sets at scale into PostgreSQL", "",
             f"`python benchmarks/imports.py --postgres URL --synthetic ... --only-synthetic`, "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPU cores (shared: `load` is the 1-minute "
             "load average when the step ended). The set is `python -m ml_core synth` in MovieLens layout. Ratings "
             "are COPY'd into a staging table, then one key-ordered INSERT (a first load: the unique and foreign keys "
             "and the secondary indexes are built again afterwards, one sorted pass each) or one upsert that rewrites "
             "only changed rows. Rates are per second of the whole command (reading the CSV, members, movies, "
             "ratings, catalogue statistics, search text).", "",
             "| dataset | step | ratings | seconds | load | ratings/s (whole command) |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['scenario']} | {r['step']} | {r['ratings']:,} | {r['seconds']:.1f} | {r['load']:.1f} | "
              f"{r['ratings'] / r['seconds']:,.0f} |" for r in rows]
    return "\n".join([*lines, SYN_END]) + "\n"


if __name__ == "__main__":
    main()
