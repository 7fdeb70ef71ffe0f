"""Lakehouse pipeline wall time and rows/s per stage: ml-100k, and (on request) a synthetic event log.

    python benchmarks/lakehouse.py                       # ml-100k (+ ml-latest-small movies, TMDB), local[2]
    python benchmarks/lakehouse.py --skip-ml100k --synthetic 10000000             # a 10-million-event export log
    python benchmarks/lakehouse.py --skip-ml100k --synthetic 10000000 \
        --master "$(bin/spark-cluster start)"                                     # the same on the 2-worker cluster

Results accumulate in var/benchmarks/lakehouse.json; docs/LAKEHOUSE_BENCHMARK.md is regenerated from them, with
a before/after stage table against the page at --baseline-rev (the last run that committed through the driver).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lakehouse import tables as T  # noqa: E402
from lakehouse.config import SHARED_DATA, LakehouseConfig, dataset_folder  # noqa: E402

log = logging.getLogger("benchmarks.lakehouse")
RESULTS = REPO / "var" / "benchmarks" / "lakehouse.json"
DOC = REPO / "docs" / "LAKEHOUSE_BENCHMARK.md"
KINDS = (("impression", 0.55), ("click", 0.2), ("rating", 0.1), ("watch", 0.1), ("watchlist", 0.05))
BASELINE_REV = "9ec72d0"
WARM_JVM_S = 1.0  # a start-up this short reused the JVM of an earlier run in the same process  # the page as measured when tables were collected to the driver through Arrow


def synthetic_events(folder: Path, n: int, *, seed: int = 0, per_file: int = 1_000_000) -> list[int]:
    """Write n events over ml-latest-small movies (Zipf-like popularity) as parquet export files."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    movies = pd.read_csv(dataset_folder("ml-latest-small") / "movies.csv")["movieId"].to_numpy()
    weights = 1.0 / np.arange(1, len(movies) + 1) ** 0.9
    weights /= weights.sum()
    kinds, kind_p = zip(*KINDS, strict=True)
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    span = 365 * 24 * 3600 * 10**6
    folder.mkdir(parents=True, exist_ok=True)
    sizes = []
    for i, lo in enumerate(range(0, n, per_file)):
        m = min(per_file, n - lo)
        kind = np.asarray(kinds)[rng.choice(len(kinds), m, p=np.asarray(kind_p, dtype=float))]
        is_rating = kind == "rating"
        value = np.where(is_rating, rng.integers(1, 11, m) / 2.0, np.nan)
        propensity = np.where(kind == "impression", rng.uniform(0.01, 1.0, m), np.nan)
        table = pa.table(
            {
                T.EVENT_ID: pc.binary_join_element_wise("s", pc.cast(pa.array(np.arange(lo, lo + m)), pa.string()), ""),
                T.USER_ID: rng.integers(1, 200_001, m),
                T.MOVIE_ID: movies[rng.choice(len(movies), m, p=weights)],
                T.KIND: kind,
                T.VALUE: pa.array(value, from_pandas=True),
                T.CREATED_AT: pa.array(np.sort(rng.integers(start, start + span, m)), pa.timestamp("us", tz="UTC")),
                T.PROPENSITY: pa.array(propensity, from_pandas=True),
            }
        )
        pq.write_table(table, folder / f"events-{i:04d}.parquet")
        sizes.append(m)
    return sizes


def run(name: str, config: LakehouseConfig, master: str) -> dict[str, Any]:
    """One full pipeline run on a fresh root: Spark start-up, then every step's rows and seconds."""
    from lakehouse.pipeline import run_pipeline
    from lakehouse.spark import spark_session

    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    spark = spark_session(master=master, app_name=f"bench-{name}")
    startup = time.perf_counter() - t0
    t1, cpu0 = time.perf_counter(), driver_jvm_cpu_s(spark)
    result = run_pipeline(config, spark=spark)
    pipeline, cpu1 = time.perf_counter() - t1, driver_jvm_cpu_s(spark)
    wall = time.perf_counter() - t0
    jvm_peak = driver_jvm_peak_mb(spark)
    spark.stop()
    steps = [
        {
            "step": s.step,
            "table": s.table,
            "rows": s.rows,
            "seconds": round(s.seconds, 2),
            "rows_per_s": round(s.rows_per_s),
        }
        for s in result.steps
    ]
    stages = {}
    for layer in ("bronze", "silver", "gold"):
        rows = sum(s.rows for s in result.steps if s.step == layer)
        secs = sum(s.seconds for s in result.steps if s.step == layer)
        stages[layer] = {"rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs) if secs else 0}
    return {
        "name": name,
        "master": master,
        "spark_startup_s": round(startup, 2),
        "pipeline_s": round(pipeline, 2),
        "wall_s": round(wall, 2),
        "driver_memory": os.environ.get("SPARK_DRIVER_MEMORY", "2g"),
        "shuffle_partitions": int(os.environ.get("SPARK_SHUFFLE_PARTITIONS", "8")),
        "driver_jvm_cpu_s": round(cpu1 - cpu0, 1) if cpu0 is not None and cpu1 is not None else None,
        "driver_jvm_peak_rss_mb": jvm_peak,
        "driver_python_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "stages": stages,
        "steps": steps,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_start": round(load_start, 2),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
    }


def driver_jvm_cpu_s(spark: object) -> float | None:
    """CPU seconds (user + system) the driver's JVM has used so far (Linux only); on ``local[n]`` it runs the
    executors too, so the difference over a run is the run's Spark CPU time whatever else the machine ran."""
    try:
        pid = spark.sparkContext._gateway.proc.pid  # type: ignore[attr-defined]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def driver_jvm_peak_mb(spark: object) -> int | None:
    """Peak resident memory (VmHWM) of the driver's JVM, the process pyspark launched (Linux only).

    On ``local[n]`` the executors run inside it, so it bounds the whole job's memory; on a cluster it is the
    driver alone."""
    try:
        pid = spark.sparkContext._gateway.proc.pid  # type: ignore[attr-defined]
        status = Path(f"/proc/{pid}/status").read_text()
    except (AttributeError, OSError):
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return round(int(found.group(1)) / 1024) if found else None


def baseline_stages(rev: str) -> dict[str, dict[str, float]]:
    """Section name -> stage -> seconds, parsed from docs/LAKEHOUSE_BENCHMARK.md as committed at ``rev``."""
    try:
        page = subprocess.run(
            ["git", "show", f"{rev}:docs/LAKEHOUSE_BENCHMARK.md"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    out: dict[str, dict[str, float]] = {}
    for block in page.split("\n## ")[1:]:
        name, body = block.split("\n", 1)
        stages = {
            m[0]: float(m[1]) for m in re.findall(r"^\| (bronze|silver|gold) \| [\d,]+ \| ([\d.]+) \|", body, re.M)
        }
        wall = re.search(r"Wall time \*\*([\d.]+) s\*\* \(Spark start-up ([\d.]+) s\)", body)
        if wall:
            stages["start-up"] = float(wall.group(2))
            stages["pipeline"] = float(wall.group(1)) - float(wall.group(2))
        out[name.strip()] = stages
    return out


def before_after(results: dict[str, dict[str, Any]], baseline: dict[str, dict[str, float]], rev: str) -> list[str]:
    """A stage table: seconds before (the baseline page) and now, for each run present in both."""
    names = [n for n in results if n in baseline and results[n]["master"].startswith("local")]
    if not names:
        return []
    lines = [
        f"## Before and after: Arrow through the driver (page at `{rev}`) vs files written by the executors",
        "",
        "Seconds per stage on `local[2]`; the pipeline excludes Spark start-up, reported on its own line. "
        "The baseline runs had 6 GB of driver memory; these have the driver memory named in each section. "
        "Both columns were measured on this shared machine at the loads their sections give (the baseline's "
        "10M run at load 4); the CPU seconds in each section are the load-free measure.",
        "",
        "| run | stage | before s | after s | speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for name in names:
        now = {k: v["seconds"] for k, v in results[name]["stages"].items()}
        now |= {"pipeline": results[name]["pipeline_s"], "start-up": results[name]["spark_startup_s"]}
        for stage in ("bronze", "silver", "gold", "pipeline", "start-up"):
            if stage == "start-up" and now[stage] < WARM_JVM_S:
                continue  # this run reused the JVM of the run before it in the same process
            if stage in baseline[name] and stage in now:
                b, a = baseline[name][stage], now[stage]
                lines.append(f"| {name} | {stage} | {b:.1f} | {a:.1f} | {b / a if a else 0:.1f}x |")
    return [*lines, ""]


def keep_other_runs(page: str, previous: str) -> str:
    """The new page plus the previous page's sections for runs this machine did not make (its results file
    lives in the ignored var/, so a fresh checkout would otherwise drop the committed runs)."""
    fresh = {block.split("\n", 1)[0] for block in page.split("\n## ")[1:]}
    kept = [block for block in previous.split("\n## ")[1:] if block.split("\n", 1)[0] not in fresh]
    return page.rstrip("\n") + "".join("\n\n## " + block.rstrip("\n") for block in kept) + "\n"


def render(
    results: dict[str, dict[str, Any]], baseline: dict[str, dict[str, float]] | None = None, rev: str = ""
) -> str:
    """The benchmark page: one section per run."""
    lines = [
        "# Lakehouse benchmark",
        "",
        "Generated by `python benchmarks/lakehouse.py` (add `--synthetic 10000000` for the event-log run); "
        "do not edit by hand. Each run starts from an empty lakehouse root, so bronze ingests every file. "
        "`rows` are rows written (merged, for the SCD2 movie dimension); seconds include Spark compute, the "
        "executors' Parquet writes and the delta-rs commit of the files' metadata. The machine (2 cores) is shared "
        "with other engineers' jobs: `load avg` is the 1-minute load at the start and at the end of the run; a "
        "load above 2 means the run had less than the whole machine.",
        "",
        *before_after(results, baseline or {}, rev),
    ]
    for name, r in results.items():
        load = r["machine"]
        memory = ""
        if "driver_jvm_peak_rss_mb" in r:
            memory = (
                f" Driver memory {r['driver_memory']}: peak resident JVM {r['driver_jvm_peak_rss_mb']} MB "
                f"(on `local[n]` the executors run inside it), Python {r['driver_python_peak_rss_mb']} MB."
            )
        if "shuffle_partitions" in r:
            memory += f" {r['shuffle_partitions']} shuffle partitions."
        timing = f"Wall time **{r['wall_s']:.1f} s** (Spark start-up {r['spark_startup_s']:.1f} s)."
        if "pipeline_s" in r:
            warm = " (the JVM of the run before it, in the same process)" if r["spark_startup_s"] < WARM_JVM_S else ""
            timing = (
                f"Pipeline **{r['pipeline_s']:.1f} s** end to end (bronze, silver, gold), Spark start-up "
                f"{r['spark_startup_s']:.1f} s{warm}, wall time {r['wall_s']:.1f} s."
            )
        if r.get("driver_jvm_cpu_s") is not None:
            where = "driver and executors" if r["master"].startswith("local") else "the driver alone"
            timing += f" CPU time of the Spark JVM ({where}) during the pipeline: {r['driver_jvm_cpu_s']:.0f} s."
        lines += [
            f"## {name}",
            "",
            f"master `{r['master']}`, {load['cpus']} CPUs, Python {load['python']}, load avg "
            + (f"{load['load_avg_1m_at_start']} at the start, " if "load_avg_1m_at_start" in load else "")
            + f"{load['load_avg_1m_at_end']} at the end, measured {r['measured_at']}.",
            "",
            timing + memory,
            "",
            "| stage | rows | seconds | rows/s |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {k} | {v['rows']:,} | {v['seconds']:.1f} | {v['rows_per_s']:,} |" for k, v in r["stages"].items()]
        lines += ["", "| step | table | rows | seconds | rows/s |", "|---|---|---:|---:|---:|"]
        lines += [
            f"| {s['step']} | {s['table']} | {s['rows']:,} | {s['seconds']:.1f} | {s['rows_per_s']:,} |"
            for s in r["steps"]
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--synthetic", type=int, default=0, help="also run an event log of this many events")
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--workdir", default=None, help="where lakehouse roots and exports go (default: a temp dir)")
    parser.add_argument("--driver-memory", default="2g", help="Spark driver memory (the same for every size)")
    parser.add_argument("--shuffle-partitions", default="8", help="spark.sql.shuffle.partitions (local and cluster)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the 'before' page")
    parser.add_argument("--render-only", action="store_true", help="rewrite the page from the saved results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ["SPARK_DRIVER_MEMORY"] = args.driver_memory
    os.environ["SPARK_SHUFFLE_PARTITIONS"] = args.shuffle_partitions
    cluster = "" if args.master.startswith("local") else ", standalone cluster (2 workers)"
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    before = dict(results)
    if args.render_only:
        page = render(results, baseline_stages(args.baseline_rev), args.baseline_rev)
        DOC.write_text(keep_other_runs(page, DOC.read_text() if DOC.exists() else ""))
        return 0
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        tmdb = SHARED_DATA / "tmdb"
        if not args.skip_ml100k:
            config = LakehouseConfig(
                root=work / "ml100k", datasets=("ml-100k",), tmdb_dir=tmdb, events_dir=None, events_dataset="ml-100k"
            )
            results[f"ml-100k{cluster}"] = run(f"ml-100k{cluster}", config, args.master)
        if args.synthetic:
            t0 = time.perf_counter()
            synthetic_events(work / "events", args.synthetic)
            log.info("generated %d events in %.1f s", args.synthetic, time.perf_counter() - t0)
            config = LakehouseConfig(
                root=work / "synthetic",
                datasets=(),
                tmdb_dir=tmdb,
                events_dir=work / "events",
                events_dataset="ml-latest-small",
            )
            name = f"synthetic event log, {args.synthetic:,} events{cluster}"
            results[name] = run(name, config, args.master)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # runs finished meanwhile by another invocation (e.g. the cluster run beside a local one) are kept
    ours = {k: v for k, v in results.items() if k not in before or v is not before[k]}
    results = {**(json.loads(RESULTS.read_text()) if RESULTS.exists() else {}), **ours}
    RESULTS.write_text(json.dumps(results, indent=2))
    page = render(results, baseline_stages(args.baseline_rev), args.baseline_rev)
    DOC.write_text(keep_other_runs(page, DOC.read_text() if DOC.exists() else ""))
    log.info("wrote %s", DOC)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
