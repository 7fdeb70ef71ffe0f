"""Gold -> training reader: wall time and peak RSS of the streamed reader against the previous whole-table read.

    python benchmarks/gold_reader.py                          # 25,000,000 ratings over 160,000 users
    python benchmarks/gold_reader.py --ratings 10000000 --work /tmp/apex-gold-10m

Writes a synthetic gold_user_sequences table (numpy + deltalake.write_deltalake, no Spark) under --work (reused
when it is already there with the same size), plus a small second dataset in the same table and a
gold_item_features table. Each reader runs in its own child process (its own peak RSS from os.wait4), in two
stages: ``arrays`` (the flat users/items/times/ratings) and ``interactions`` (the full
``interactions_from_gold``: vocabularies, indices, tie-break keys, item features). The previous reader
(``DeltaTable.to_pyarrow_table`` of the whole table, filtered and flattened afterwards) lives here only, as the
baseline. The result replaces the "Gold → training reader" section of docs/LAKEHOUSE_BENCHMARK.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

DOC = REPO / "docs" / "LAKEHOUSE_BENCHMARK.md"
RESULTS = REPO / "var" / "benchmarks" / "gold_reader.json"
SECTION = "Gold → training reader"
DATASET = "ml-25m-synthetic"
OTHER = "ml-100k"  # a second, small dataset in the same table (the filter has to skip it)
MOVIES = 60_000


def write_tables(work: Path, ratings: int, users: int, *, seed: int = 0, users_per_file: int = 20_000) -> None:
    """gold_user_sequences with ``ratings`` events of ``users`` users (plus 100,000 of OTHER) and gold_item_features."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    marker = work / "written.json"
    spec = {"ratings": ratings, "users": users, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, MOVIES + 1) ** 0.9
    cdf = np.cumsum(popularity / popularity.sum())

    def table(dataset: str, user_ids: np.ndarray, lengths: np.ndarray) -> pa.Table:
        n = int(lengths.sum())
        offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
        items = (np.searchsorted(cdf, rng.random(n)) + 1).astype(np.int64)
        times = 1_000_000_000 + np.cumsum(rng.integers(1, 86_400, n, dtype=np.int64))
        stars = (rng.integers(1, 11, n) / 2).astype(np.float32)
        return pa.table({
            T.DATASET: pa.array([dataset] * len(user_ids)),
            T.USER_ID: pa.array(user_ids.astype(np.int64)),
            T.ITEM_IDS: pa.ListArray.from_arrays(offsets, pa.array(items)),
            T.TIMESTAMPS: pa.ListArray.from_arrays(offsets, pa.array(times)),
            T.RATINGS: pa.ListArray.from_arrays(offsets, pa.array(stars)),
            T.LENGTH: pa.array(lengths.astype(np.int32)),
        })

    activity = rng.lognormal(0.0, 1.0, users)
    lengths = 1 + rng.multinomial(ratings - users, activity / activity.sum())
    path = str(work / T.GOLD_USER_SEQUENCES)
    for lo in range(0, users, users_per_file):
        ids = np.arange(lo + 1, min(lo + users_per_file, users) + 1)
        write_deltalake(path, table(DATASET, ids, lengths[lo : lo + len(ids)]), mode="append")
        if lo <= users // 2 < lo + users_per_file:  # the other dataset's rows sit between this dataset's files
            small = 1 + rng.multinomial(100_000 - 943, np.full(943, 1 / 943))
            write_deltalake(path, table(OTHER, np.arange(1, 944), small), mode="append")
    movies = np.arange(1, MOVIES + 1, dtype=np.int64)
    write_deltalake(str(work / T.GOLD_ITEM_FEATURES), pa.table({
        T.DATASET: pa.array([DATASET] * MOVIES),
        T.MOVIE_ID: pa.array(movies),
        T.TITLE: pa.array([f"Movie {m}" for m in movies]),
        T.GENRES: pa.array([["Drama"]] * MOVIES, pa.list_(pa.string())),
        T.YEAR: pa.array(1950 + movies % 70),
    }), mode="overwrite")
    marker.write_text(json.dumps(spec))


def whole_table_arrays(root: Path, dataset: str) -> tuple[Any, Any, Any, Any]:
    """The previous reader (before the streamed one): the whole table in Arrow, filtered, then flattened."""
    import numpy as np
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    columns = [T.DATASET, T.USER_ID, T.ITEM_IDS, T.TIMESTAMPS, T.RATINGS]
    data = DeltaTable(str(root / T.GOLD_USER_SEQUENCES)).to_pyarrow_table(columns=columns)
    seqs = data.filter(pc.equal(data[T.DATASET], dataset))
    lengths = pc.list_value_length(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    users = np.repeat(seqs[T.USER_ID].to_numpy(), lengths)
    items = pc.list_flatten(seqs[T.ITEM_IDS]).to_numpy(zero_copy_only=False)
    times = pc.list_flatten(seqs[T.TIMESTAMPS]).to_numpy(zero_copy_only=False)
    ratings = pc.list_flatten(seqs[T.RATINGS]).to_numpy(zero_copy_only=False)
    return users, items, times, ratings


def child(reader: str, stage: str, work: Path, batch_rows: int) -> dict[str, Any]:
    """One measured read in this (fresh) process."""
    from ml_core import gold
    from ml_core.data import interactions_from_arrays

    rss_before = _rss_mib()
    start = time.perf_counter()
    if reader == "streamed":
        if stage == "arrays":
            n = len(gold.read_sequences(work, DATASET, batch_rows=batch_rows)[0])
        else:
            n = len(gold.interactions_from_gold(work, DATASET, batch_rows=batch_rows))
    else:
        users, items, times, ratings = whole_table_arrays(work, DATASET)
        n = len(users)
        if stage == "interactions":
            data = interactions_from_arrays(users, items, times, ratings, name=DATASET)
            del users, items, times, ratings
            gold._attach_item_features(data, work, DATASET, None)
            n = len(data)
    return {"seconds": time.perf_counter() - start, "ratings": n, "rss_before_mib": rss_before}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(reader: str, stage: str, work: Path, batch_rows: int) -> dict[str, Any]:
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--child", reader, "--stage", stage, "--work", str(work),
                                 "--batch-rows", str(batch_rows)], cwd=REPO, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{reader}/{stage} failed")
        out.seek(0)
        result: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def render(run: dict[str, Any]) -> str:
    rows = run["rows"]
    lines = [
        f"## {SECTION}",
        "",
        f"`{run['command']}` on {run['machine']}, {run['date']}; `uptime` before: `{run['uptime_before']}`, "
        f"after: `{run['uptime_after']}` (a load above 2 means the run had less than the whole machine).",
        "",
        f"A synthetic gold_user_sequences table of {run['ratings']:,} ratings over {run['users']:,} users "
        f"({run['files']} files, {run['table_mib']:,.0f} MiB of Parquet, plus 100,000 ratings of a second dataset "
        "in the same table), read by each reader in a fresh child process. `arrays`: the flat "
        "users/items/times/ratings; `interactions`: the whole `interactions_from_gold` (vocabularies, indices, "
        "tie-break keys, item features). Peak RSS is the child's `ru_maxrss` (the interpreter with its imports is "
        f"about {run['rss_before_mib']:.0f} MiB of it). Streamed: `ml_core.gold.read_sequences`, "
        f"{run['batch_rows']:,} user rows per record batch, dataset filter pushed into the scan, buffers sized "
        "from the `length` column. Whole table: the reader before it, `DeltaTable.to_pyarrow_table` of the whole "
        "table, filtered and flattened afterwards (kept in `benchmarks/gold_reader.py` as the baseline).",
        "",
        "| stage | reader | seconds | peak RSS (MiB) |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['reader']} | {r['seconds']:.1f} | {r['peak_rss_mib']:,.0f} |")
    return "\n".join(lines) + "\n"


def write_doc(section: str) -> None:
    page = DOC.read_text() if DOC.exists() else "# Lakehouse benchmark\n"
    blocks = page.split("\n## ")
    kept = [b for b in blocks[1:] if b.split("\n", 1)[0] != SECTION]
    DOC.write_text(blocks[0].rstrip("\n") + "".join("\n\n## " + b.rstrip("\n") for b in kept) + "\n\n" + section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--users", type=int, default=160_000)
    parser.add_argument("--work", type=Path, default=None, help="table folder (default: a folder under the temp dir)")
    parser.add_argument("--batch-rows", type=int, default=0, help="user rows per batch (default: the reader's)")
    parser.add_argument("--no-doc", action="store_true", help="print the section instead of writing the page")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stage", default="arrays", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from ml_core.gold import BATCH_ROWS

    batch_rows = args.batch_rows or BATCH_ROWS
    work = args.work or Path(tempfile.gettempdir()) / f"apex-gold-reader-{args.ratings}"
    if args.child:
        print(json.dumps(child(args.child, args.stage, work, batch_rows)))
        return 0
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    start = time.perf_counter()
    write_tables(work, args.ratings, args.users)
    print(f"tables ready under {work} in {time.perf_counter() - start:.0f} s", flush=True)
    rows = []
    for stage in ("arrays", "interactions"):
        for reader in ("whole table", "streamed"):
            r = measure(reader.split()[0], stage, work, batch_rows)
            assert r["ratings"] == args.ratings, r
            rows.append({"stage": stage, "reader": reader, **r})
            print(f"{stage:12s} {reader:12s} {r['seconds']:7.1f} s {r['peak_rss_mib']:8.0f} MiB", flush=True)
    table = work / T.GOLD_USER_SEQUENCES
    files = sorted(table.glob("*.parquet"))
    command = "nice -n 19 python benchmarks/gold_reader.py" + (
        f" --ratings {args.ratings}" if args.ratings != 25_000_000 else "") + (
        f" --users {args.users}" if args.users != 160_000 else "") + (
        f" --batch-rows {args.batch_rows}" if args.batch_rows else "")
    run = {
        "command": command, "machine": f"{platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()})",
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "uptime_before": uptime_before,
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "ratings": args.ratings, "users": args.users, "files": len(files),
        "table_mib": sum(f.stat().st_size for f in files) / 2**20, "batch_rows": batch_rows,
        "rss_before_mib": max(r["rss_before_mib"] for r in rows), "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(run, indent=2))
    section = render(run)
    if args.no_doc:
        print(section)
    else:
        write_doc(section)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
