"""How many ASGI worker processes ``bin/run`` starts: ``python -m apex_site.workers`` prints the number.

The rule, measured by ``benchmarks/serving.py --workers-sweep`` (docs/BENCHMARKS.md, "How many workers"):

* ``WEB_CONCURRENCY`` when set (a positive integer), as uvicorn and gunicorn read it;
* one process in the embedded default (no ``DATABASE_URL`` or no ``REDIS_URL``): SQLite takes one writer, and
  the in-memory channel layer and per-process cache cannot be shared between processes;
* otherwise one per core this process may run on: a request is CPU-bound Python holding the GIL (model math
  included, one thread per worker, ``apex_site.threads``), so a worker per core keeps every core busy and more
  only adds switching and a copy of the serving bundle each. Bounded by memory: each worker holds its own
  engine, so at most ``MemAvailable / APEX_WORKER_MB`` (default 1536 MB, the per-worker budget of a
  60,000-movie bundle, issue #17).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_WORKER_MB = 1536


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _available_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def web_workers(env: Mapping[str, str], *, cores: int, available_mb: int | None) -> int:
    """The worker count for this environment (see the module docstring); ValueError on a bad setting."""
    raw = env.get("WEB_CONCURRENCY", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"WEB_CONCURRENCY={raw!r} is not a positive integer")
        return int(raw)
    if not (env.get("DATABASE_URL") and env.get("REDIS_URL")):
        return 1
    per_worker = env.get("APEX_WORKER_MB", "").strip() or str(DEFAULT_WORKER_MB)
    if not per_worker.isdigit() or int(per_worker) < 1:
        raise ValueError(f"APEX_WORKER_MB={per_worker!r} is not a positive integer")
    by_memory = cores if available_mb is None else available_mb // int(per_worker)
    return max(1, min(cores, by_memory))


if __name__ == "__main__":
    import sys

    try:
        print(web_workers(os.environ, cores=_cores(), available_mb=_available_mb()))
    except ValueError as exc:
        sys.exit(f"apex_site.workers: {exc}")
