"""The standing reliability suite (issue 14), run once and written to docs/RELIABILITY.md.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python benchmarks/reliability.py \
        [--out docs/RELIABILITY.md] [-- extra pytest arguments]

Runs pytest on ``tests/reliability/`` and ``tests/test_authorization_matrix.py`` with ``APEX_PROBE_REPORT``
pointing at a temporary file: every probe of the suite (schema fuzzing, authorization matrix, bad inputs,
Redis outage, faults, pool, loopback load) appends one JSON line with what it sent and what came back
(tests/probes.py). The page lists each probe with its counts, the outcome of every test, the command line,
the date and the machine's load. Most of the suite is marked ``services``: without ``DATABASE_URL`` and
``REDIS_URL`` those tests are skipped, and the page says so. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITE = ["tests/reliability", "tests/test_authorization_matrix.py"]


def pytest_command(extra: list[str], junit: Path | str = "<tmp>/junit.xml") -> list[str]:
    return ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={junit}", *SUITE, *extra]


def run_suite(extra: list[str], workdir: Path) -> tuple[int, float, Path, Path]:
    """pytest on the suite; returns (exit status, seconds, probe JSON lines, JUnit XML)."""
    probes, junit = workdir / "probes.jsonl", workdir / "junit.xml"
    env = {**os.environ, "APEX_PROBE_REPORT": str(probes)}
    cmd = [sys.executable, *pytest_command(extra, junit)[1:]]
    start = time.monotonic()
    status = subprocess.call(cmd, cwd=REPO, env=env)
    return status, time.monotonic() - start, probes, junit


def read_probes(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_tests(path: Path) -> list[dict[str, Any]]:
    """One row per test case of the JUnit report: id, outcome, seconds, first line of the message."""
    if not path.exists():
        return []
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            found = case.find(tag)
            if found is not None:
                outcome, message = name, (found.get("message") or "").strip().splitlines()[:1]
                message = message[0][:160] if message else ""
                break
        rows.append({"key": (case.get("classname", ""), case.get("name", "")), "outcome": outcome,
                     "test": node_id(case.get("classname", ""), case.get("name", "")),
                     "seconds": float(case.get("time") or 0.0), "message": message})
    return rows


def node_id(classname: str, name: str) -> str:
    """JUnit's (classname, name) as pytest's node id: the longest dotted prefix that is a file is the module."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if (REPO / path).exists():
            return "::".join([path, *parts[cut:], name])
    return f"{classname}::{name}"


def junit_key(nodeid: str) -> tuple[str, str]:
    """pytest's node id (``tests/x/test_y.py::Class::test[p]``) as JUnit's (classname, name)."""
    parts = nodeid.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _outcome_of(nodeid: str, tests: list[dict[str, Any]]) -> str:
    key = junit_key(nodeid)
    return next((t["outcome"] for t in tests if t["key"] == key), "?")


def render(*, probes: list[dict[str, Any]], tests: list[dict[str, Any]], status: int, seconds: float,
           command: str, suite_command: str, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    counts = {o: sum(1 for t in tests if t["outcome"] == o) for o in ("passed", "failed", "error", "skipped")}
    services = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    lines = [
        "# Reliability: the standing suite's probes",
        "",
        f"Produced by `{command}` on {platform.node()} ({os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Services: {'PostgreSQL/Redis from DATABASE_URL/REDIS_URL' if services else 'none set (services tests skipped)'}."
        f" Load average (1/5/15 min) before {' / '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{' / '.join(f'{v:.2f}' for v in load_after)}.",
        f"The suite: `APEX_PROBE_REPORT=<tmp>/probes.jsonl {suite_command}`.",
        "",
        f"**{'PASS' if status == 0 else 'FAIL'}**: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped in {seconds:.0f} s (pytest exit status {status}).",
        "",
        "Each probe is a family of requests, events or faults a test sends; **5xx** counts server errors, "
        "**failures** any other violation (an answer off the schema, a lost or doubled event, a wrong status). "
        "The tests assert both are 0; latencies are recorded, never asserted.",
        "",
        "## Probes",
        "",
        "| probe | test | outcome | sent | 5xx | failures |",
        "|---|---|---|---|---|---|",
    ]
    for p in probes:
        test = p["test"]
        lines.append(f"| {_cell(p['probe'])} | `{test}` | {_outcome_of(test, tests)} | {_cell(p['sent'])} | "
                     f"{_cell(p['server_errors'])} | {_cell(p['failures'])} |")
    if not probes:
        lines.append("| (no probe recorded) | | | | | |")
    lines += ["", "## Probe details", ""]
    for p in probes:
        extra = p.get("extra") or {}
        lines += [f"### {p['probe']}", "", f"`{p['test']}`", ""]
        if "p99_ms" in extra and "slo_p99_ms" in extra:
            within = float(extra["p99_ms"]) <= float(extra["slo_p99_ms"])
            lines += [f"p99 {float(extra['p99_ms']):.0f} ms against the SLO's {float(extra['slo_p99_ms']):.0f} ms "
                      f"(`SLO_P99_MS`): **{'within' if within else 'over'}**.", ""]
        if extra:
            lines += ["| count | value |", "|---|---|"]
            lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in extra.items()]
            lines.append("")
    lines += ["## Tests", "", "| test | outcome | seconds | message |", "|---|---|---|---|"]
    lines += [f"| `{t['test']}` | {t['outcome']} | {t['seconds']:.1f} | {_cell(t['message'])} |" for t in tests]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "RELIABILITY.md")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    command = "python benchmarks/reliability.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="apex-reliability-") as tmp:
        status, seconds, probes_path, junit_path = run_suite(args.pytest_args, Path(tmp))
        probes, tests = read_probes(probes_path), read_tests(junit_path)
    page = render(probes=probes, tests=tests, status=status, seconds=seconds, command=command,
                  suite_command=shlex.join(pytest_command(args.pytest_args)),
                  load_before=load_before, load_after=os.getloadavg())
    args.out.write_text(page, encoding="utf-8")
    print(f"{args.out}: {len(probes)} probes, {len(tests)} tests, pytest exit status {status}")
    sys.exit(status)


if __name__ == "__main__":
    main()
