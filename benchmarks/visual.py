"""Cost of visually similar movies (docs/VISUAL.md): index build time per 100 posters, and request latency.

    .venv/bin/python benchmarks/visual.py [--posters 200] [--requests 200] [--arch tiny|vit-b-32 ...]
                                          [--out docs/VISUAL.md]

Everything runs in this process against a throw-away SQLite database: ``--posters`` movies get TMDB-style
poster paths, and an in-process fake of TMDB's image CDN (httpx.MockTransport, no network) serves a generated
342x513 JPEG for each. For every architecture the real ``build_visual_index`` command runs twice: cold (fetch
every poster into an empty cache, then embed) and warm (every poster cached: the embedding pass alone), with the
polite fetch interval set to 0 so the figures are the machine's, not the rate limit's. Architectures:

* ``tiny``: the tests' randomly initialised CLIP (32 px images, width 32);
* ``vit-b-32``: ``CLIPConfig()``'s defaults, the architecture of openai/clip-vit-base-patch32 (224 px, ViT-B/32
  image tower, 512-d joint space), with random weights: the same compute as the real weights, which this
  machine cannot download.

Latency is server time through Django's full stack (test client, middleware included) with the index loaded:
``GET /v1/recommendations/id/<id>/visual``, ``GET /v1/search/visual`` (CLIP's text tower per query), and the
movie page's extras fragment with and without an index (what the "Looks like this" row adds to a page).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

logger = logging.getLogger("visual-benchmark")
MARK_START, MARK_END = "<!-- benchmark:visual:start -->", "<!-- benchmark:visual:end -->"
QUERIES = ["dark rainy neon city", "a cartoon for children", "a lone cowboy in the desert", "space battle"]


def _setup_django(root: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "apex_site.settings", "SQLITE_PATH": str(root / "db.sqlite3"),
                       "ML_ARTIFACTS_DIR": str(root / "artifacts"), "DEBUG": "true", "LOG_LEVEL": "WARNING",
                       "POSTER_FETCH_INTERVAL_S": "0", "APEX_THREADS": "1",
                       # one anonymous client sends every request: the per-address throttles would answer 429
                       "THROTTLE_BURST": "1000000/min", "THROTTLE_ANON": "1000000/min",
                       "THROTTLE_ANON_MODEL": "1000000/min"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--run-syncdb", verbosity=0)


def _poster_jpeg(i: int) -> bytes:
    """A distinct 342x513 poster: two colour bands and a disc whose size and place follow the movie."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (342, 513), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 300 + i % 150, 342, 513), fill=((i * 11) % 256, 40, (i * 7) % 256))
    r = 30 + i % 80
    draw.ellipse((171 - r, 200 - r + i % 60, 171 + r, 200 + r + i % 60), fill=(240, 230, 200))
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _catalogue(n: int) -> tuple[list[int], Any]:
    """n movies with poster paths, and a MockTransport serving their posters as TMDB's CDN would."""
    import httpx

    from catalog.models import Movie

    Movie.objects.bulk_create([Movie(id=i, title=f"Movie {i}", year=1990 + i % 30, poster_path=f"/poster{i}.jpg")
                               for i in range(1, n + 1)])
    posters = {f"/t/p/w342/poster{i}.jpg": _poster_jpeg(i) for i in range(1, n + 1)}

    def cdn(request: httpx.Request) -> httpx.Response:
        body = posters.get(request.url.path)
        return (httpx.Response(200, content=body, headers={"Content-Type": "image/jpeg"}) if body is not None
                else httpx.Response(404))

    return list(range(1, n + 1)), httpx.MockTransport(cdn)


def _model(arch: str, root: Path) -> Path:
    """A saved CLIP of the architecture (random weights) with its image processor and a small tokenizer."""
    from tests.visual_fixtures import make_tiny_clip

    directory = root / f"clip-{arch}"
    make_tiny_clip(directory)  # processor + tokenizer (and the tiny weights)
    if arch == "vit-b-32":
        import torch
        from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

        torch.manual_seed(0)
        CLIPModel(CLIPConfig()).save_pretrained(directory)
        CLIPImageProcessorPil().save_pretrained(directory)  # 224 px, CLIP's mean/std: openai's preprocessing
    return directory


def _build(model: Path, transport: Any) -> tuple[float, dict[str, Any]]:
    from django.core.management import call_command

    from recommendations import visual

    start = time.perf_counter()
    call_command("build_visual_index", "--model", str(model), transport=transport, stdout=io.StringIO())
    seconds = time.perf_counter() - start
    visual.visual_reset()
    return seconds, visual.visual_index().manifest["metrics"]


def _latency(client: Any, paths: list[str], requests: int) -> dict[str, float]:
    for path in paths[:3]:  # warm: index and text tower loaded, templates compiled
        assert client.get(path).status_code == 200, path
    times = []
    for i in range(requests):
        start = time.perf_counter()
        response = client.get(paths[i % len(paths)])
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (paths[i % len(paths)], response.status_code)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import shutil

    import torch
    from django.conf import settings
    from django.test import Client

    from recommendations import visual

    torch.set_num_threads(1)
    root = Path(args.root)
    ids, transport = _catalogue(args.posters)
    client = Client()
    extras = [f"/movies/{i}/extras/" for i in ids[:: max(1, len(ids) // 20)]]
    results: dict[str, Any] = {"posters": args.posters, "requests": args.requests, "load_before": os.getloadavg()[0],
                               "extras_without_index": _latency(client, extras, args.requests), "archs": {}}
    for arch in args.arch:
        model = _model(arch, root)
        shutil.rmtree(settings.POSTER_CACHE_DIR, ignore_errors=True)
        cold, _ = _build(model, transport)
        warm, metrics = _build(model, transport)
        similar = [f"/v1/recommendations/id/{i}/visual?k=10" for i in ids[: min(50, len(ids))]]
        search = [f"/v1/search/visual?q={q.replace(' ', '+')}&limit=10" for q in QUERIES]
        results["archs"][arch] = {
            "dims": metrics["dims"], "cold_s": cold, "warm_s": warm, "embed_s": metrics["embed_seconds"],
            "similar": _latency(client, similar, args.requests), "search": _latency(client, search, args.requests),
            "extras": _latency(client, extras, args.requests)}
        logger.info("%s: %s", arch, results["archs"][arch])
        shutil.rmtree(visual.visual_index_dir(), ignore_errors=True)
        visual.visual_reset()
    results["load_after"] = os.getloadavg()[0]
    return results


def render(results: dict[str, Any]) -> str:
    n = results["posters"]
    lines = [MARK_START, "",
             f"Measured by `python benchmarks/visual.py --posters {n} --requests {results['requests']}` on "
             f"{platform.machine()} with {os.cpu_count()} CPUs (torch and FAISS on 1 thread), "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. Posters come from an in-process fake of TMDB's CDN (no "
             "network), the fetch interval set to 0, so the figures are this machine's compute, not the rate limit. "
             f"The machine was shared: 1-minute load average {results['load_before']:.1f} at the start, "
             f"{results['load_after']:.1f} at the end.",
             "", "| model | dims | build, cold (fetch + embed) per 100 posters | build, warm (cached posters) "
             "per 100 posters | of which embedding, per 100 |", "|---|---|---|---|---|"]
    for arch, r in results["archs"].items():
        per = 100 / n
        lines.append(f"| {arch} | {r['dims']} | {r['cold_s'] * per:.2f} s | {r['warm_s'] * per:.2f} s | "
                     f"{r['embed_s'] * per:.2f} s |")
    lines += ["", f"Server time with the index loaded ({n} posters), Django test client, "
              f"{results['requests']} requests each:", "",
              "| model | request | p50 | p95 |", "|---|---|---|---|"]
    base = results["extras_without_index"]
    lines.append(f"| (no index) | movie extras fragment (`/movies/<id>/extras/`) | {base['p50']:.1f} ms | "
                 f"{base['p95']:.1f} ms |")
    for arch, r in results["archs"].items():
        for name, key in (("`GET /v1/recommendations/id/<id>/visual?k=10`", "similar"),
                          ("`GET /v1/search/visual?q=…&limit=10` (text tower per query)", "search"),
                          ("movie extras fragment, with the \"Looks like this\" row", "extras")):
            lines.append(f"| {arch} | {name} | {r[key]['p50']:.1f} ms | {r[key]['p95']:.1f} ms |")
    lines += ["", MARK_END]
    return "\n".join(lines)


def write(out: Path, block: str) -> None:
    text = out.read_text() if out.exists() else ""
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posters", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--arch", nargs="+", default=["tiny", "vit-b-32"], choices=["tiny", "vit-b-32"])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "VISUAL.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="apex-visual-bench-") as tmp:
        args.root = tmp
        os.environ["POSTER_CACHE_DIR"] = str(Path(tmp) / "posters")
        _setup_django(Path(tmp))
        block = render(run(args))
    write(args.out, block)
    print(block)


if __name__ == "__main__":
    main()
