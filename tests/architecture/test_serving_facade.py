"""The serving facade is closed: nothing outside ``ml_core/serving/`` reaches into the engine (issue 16 item 2)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REACHING_IN = re.compile(r"\._bundle\b|\b\w*engine\w*\.(bundle|popularity|ranker|_\w+)\b|\.bundle\.(ensemble|auditor|"
                         r"user_states|scorers|ranker|popularity|model_names|meta)\b|\b_version\b")


def _python_files() -> list[Path]:
    skip = (ROOT / ".venv", ROOT / "ml_core" / "serving", ROOT / "var", ROOT / "tests" / "architecture")
    return [p for p in ROOT.rglob("*.py") if not any(p.is_relative_to(s) for s in skip)]


def test_no_code_outside_the_package_touches_the_engines_internals() -> None:
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in _python_files()
             for n, line in enumerate(p.read_text().splitlines(), 1) if REACHING_IN.search(line)]
    assert not found, "\n".join(found)


def test_the_pattern_catches_what_it_should() -> None:
    for line in ("engine.bundle.auditor.bucket", "engine._engine", "engine.popularity.counts", "p._version",
                 "served._bundle.rating"):
        assert REACHING_IN.search(line), line
    assert not REACHING_IN.search("engine.recommend_user(history)")
