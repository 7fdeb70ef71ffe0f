"""Sampled stacks (py-spy's ``--format raw``: one ``frame;frame;... count`` line per distinct stack) into a
per-stage CPU breakdown and a flame graph SVG.

A sample belongs to the stage of its innermost frame that names one (leaf first): time in psycopg is the
database's whether the ORM or the quota asked for it, time in torch is model math, and a repository file's own
lines count for its app. Only samples of a busy thread are recorded (py-spy's default), so shares are of CPU.
"""

from __future__ import annotations

import html
import re
import zlib
from collections import Counter
from collections.abc import Iterable

# (stage, pattern on the frame's file); the first pattern that matches a frame names its stage
STAGES: list[tuple[str, str]] = [
    ("database driver (psycopg, Django ORM)", r"/psycopg|/psycopg_pool/|/django/db/"),
    ("redis client", r"/redis/|/kombu/|/celery/"),
    ("model math (torch, ONNX Runtime, numpy, FAISS)", r"/torch/|/onnxruntime/|/numpy/|/faiss/|/scipy/"),
    ("JSON rendering and parsing", r"/json/|/orjson|rest_framework/(renderers|parsers)\.py"),
    ("APEX serving engine (ml_core)", r"/ml_core/"),
    ("APEX recommendations (adapter, online sync)", r"/recommendations/"),
    ("APEX quota and keys (billing, accounts)", r"/billing/|/accounts/"),
    ("APEX history and catalogue (catalog)", r"/catalog/"),
    ("APEX events and impressions (events, experiments)", r"/events/|/experiments/"),
    ("APEX middleware and helpers (apex_site)", r"/apex_site/"),
    ("DRF (authentication, throttles, views)", r"/rest_framework/|/rest_framework_simplejwt/"),
    ("Django middleware (sessions, CSRF, auth, messages, allauth, whitenoise)",
     r"/django/(middleware|contrib)/|/allauth/|/whitenoise/"),
    ("Django core (handler, URLs, responses, signals)", r"/django/|/asgiref/"),
    ("server (uvicorn, event loop, HTTP parsing)", r"/uvicorn/|/asyncio/|uvloop|httptools|/h11/|/anyio/"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in STAGES]
_LINE = re.compile(r"^(.*) (\d+)$")
_FILE = re.compile(r"\(([^()]*?)(?::\d+)?\)$")


def parse(lines: Iterable[str]) -> Counter[str]:
    """Collapsed stacks -> sample count per stack (root first, ``;``-separated frames)."""
    stacks: Counter[str] = Counter()
    for line in lines:
        match = _LINE.match(line.strip())
        if match:
            stacks[match.group(1)] += int(match.group(2))
    return stacks


def stage_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        found = _FILE.search(frame)
        path = found.group(1) if found else frame
        for name, pattern in _COMPILED:
            if pattern.search(path):
                return name
    return "other (Python runtime, threads)"


def breakdown(stacks: Counter[str]) -> list[tuple[str, float]]:
    """(stage, share of samples) from the largest, summing to 1."""
    total = sum(stacks.values()) or 1
    per: Counter[str] = Counter()
    for stack, n in stacks.items():
        per[stage_of(stack)] += n
    return [(name, n / total) for name, n in per.most_common()]


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``, the label a box shows."""
    found = _FILE.search(frame)
    if not found:
        return frame
    name = frame[: found.start()].strip()
    return f"{name} ({found.group(1).rsplit('/', 1)[-1]})"


def svg(stacks: Counter[str], title: str, width: int = 1200, row: int = 16) -> str:
    """A flame graph (root at the bottom, width = share of samples) as a standalone SVG with hover titles."""
    counts: dict[tuple[str, ...], int] = Counter()
    for stack, n in stacks.items():
        frames = tuple(_short(f) for f in stack.split(";"))
        for depth in range(1, len(frames) + 1):
            counts[frames[:depth]] += n
    total = sum(stacks.values()) or 1
    depth_max = max((len(k) for k in counts), default=1)
    height = (depth_max + 3) * row
    boxes: list[str] = []
    # lay out children left to right inside their parent, largest first
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for key in counts:
        children.setdefault(key[:-1], []).append(key)
    x_of: dict[tuple[str, ...], float] = {(): 0.0}
    order = [()]
    while order:
        parent = order.pop()
        x = x_of[parent]
        for key in sorted(children.get(parent, []), key=lambda k: -counts[k]):
            w = counts[key] / total * width
            x_of[key] = x
            if w >= 0.3:
                y = height - (len(key) + 1) * row
                hue = 20 + zlib.crc32(key[-1].encode()) % 40
                label = html.escape(key[-1])
                text = label if w > 7 * len(key[-1]) else (label[: int(w / 7)] if w > 30 else "")
                boxes.append(f'<g><title>{label}: {counts[key]} samples ({counts[key] / total:.1%})</title>'
                             f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                             f'fill="hsl({hue},85%,60%)"/><text x="{x + 2:.1f}" y="{y + row - 4}">{text}</text></g>')
                order.append(key)
            x += w
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
            f'font-size="11"><rect width="100%" height="100%" fill="#fff"/><text x="4" y="14" font-size="13">'
            f'{html.escape(title)} ({total} samples)</text>' + "".join(boxes) + "</svg>")
