"""Command line: ``python -m lakehouse run|history|optimize|vacuum``; paths come from flags or LAKEHOUSE_* env."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from . import tables as T
from .config import LakehouseConfig, SourceError

log = logging.getLogger("lakehouse")


def _config(args: argparse.Namespace) -> LakehouseConfig:
    config = LakehouseConfig.from_env()
    if args.root:
        config = replace(config, root=Path(args.root))
    if args.dataset:
        config = replace(config, datasets=tuple(args.dataset))
    if args.events_dir:
        config = replace(config, events_dir=Path(args.events_dir))
    if args.events_dataset:
        config = replace(config, events_dataset=args.events_dataset)
    return config


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lakehouse", description=__doc__)
    parser.add_argument("command", choices=["run", "history", "optimize", "vacuum"])
    parser.add_argument("--root", help="lakehouse root folder (LAKEHOUSE_ROOT)")
    parser.add_argument("--dataset", action="append", help="MovieLens dataset name or folder; repeatable")
    parser.add_argument("--events-dir", help="folder of event exports (LAKEHOUSE_EVENTS_DIR)")
    parser.add_argument("--events-dataset", help="id space of exported events' movie ids")
    parser.add_argument("--layers", default="bronze,silver,gold", help="comma-separated subset of the layers")
    parser.add_argument("--table", help="table for history/optimize/vacuum")
    parser.add_argument("--as-of", help="the run's time, ISO-8601 with an offset (default: now); reruns compare equal")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = _config(args)
    if args.command == "run":
        from .pipeline import PipelineBusy, run_pipeline

        try:
            as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
            result = run_pipeline(config, layers=[s.strip() for s in args.layers.split(",") if s.strip()], as_of=as_of)
        except (SourceError, ValueError) as exc:
            log.error("%s", exc)
            return 2
        except PipelineBusy as exc:
            log.error("%s", exc)
            return 3
        for s in result.steps:
            log.info("%-6s %-24s %10d rows %7.1fs %s", s.step, s.table, s.rows, s.seconds, s.note)
        return 0
    from .delta import DeltaRsBackend

    store = DeltaRsBackend(config.root)
    tables = [args.table] if args.table else [*T.BRONZE_TABLES, *T.SILVER_TABLES, *T.GOLD_TABLES]
    for table in tables:
        if not store.exists(table):
            continue
        if args.command == "history":
            sys.stdout.write(json.dumps({table: store.history(table)}, default=str) + "\n")
        elif args.command == "optimize":
            log.info("optimize %s: %s", table, store.optimize(table))
        else:
            log.info("vacuum %s: %d file(s) removed", table, len(store.vacuum(table)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
