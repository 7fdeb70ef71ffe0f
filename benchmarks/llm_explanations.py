"""What LLM explanations cost in latency, against a local OpenAI-compatible fake provider with a set delay.

    .venv/bin/python benchmarks/llm_explanations.py [--delay-ms 300] [--requests 20] [--out docs/LLM_EXPLANATIONS.md]

Runs in-process through Django's full request stack on the browser journeys' prepared database (ml-latest-small,
the quickly trained Tier 1 bundle; benchmarks/support/portal.py), like benchmarks/pages.py. The provider is a real
HTTP server on 127.0.0.1 that waits ``--delay-ms`` and answers one grounded sentence per movie; the app talks to it
with the real ``openai`` client. Off and on are measured alternately, request by request, so machine load hits
both alike. Measured, p50 and p95 over ``--requests``:

- ``GET /v1/recommendations/user/<id>?explain=1`` off, on with a warm sentence cache, on with a cold one (a fresh
  cache prefix per request: every item is a miss, so one provider round trip per request);
- the member's home page (first paint) off and on: on, it only stores the shown picks' facts;
- the page's fill-in request (``/explanations``), cold and warm;
- a provider slower than the deadline: the first request waits ``LLM_DEADLINE_S``, the next ones are in the
  cool-down and wait for nothing.

The numbers replace the section between the markers in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.support.portal import PortalServer  # noqa: E402

logger = logging.getLogger("llm_explanations")
START, END = "<!-- llm-bench:start -->", "<!-- llm-bench:end -->"
FAVOURITES = [(1, 5.0), (260, 4.5), (2571, 4.5), (318, 4.0), (1214, 5.0), (4993, 4.5), (296, 3.5)]


class FakeProvider:
    """An OpenAI-compatible chat-completions endpoint: waits ``delay_s``, then one sentence per movie from its facts."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                provider.calls += 1
                time.sleep(provider.delay_s)
                movies = json.loads(body["messages"][1]["content"])["movies"]
                payload = json.dumps(provider.answer(movies, body["model"])).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline): fine

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def answer(movies: list[dict[str, Any]], model: str) -> dict[str, Any]:
        sentences = []
        for m in movies:
            because = m.get("because_of")
            text = (f'You liked "{because["title"]}", and "{m["title"]}" is {m["found_because"][0]}.' if because
                    else f'"{m["title"]}" is {m["found_because"][0]}.')
            sentences.append({"movie_id": m["movie_id"], "sentence": text})
        return {"id": "gen-bench", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps({"explanations": sentences})}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def _setup_django(server: PortalServer) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(server.env())
    os.environ.pop("LLM_BASE_URL", None)  # the benchmark switches it on and off itself
    import django

    django.setup()


def _member() -> Any:
    from django.contrib.auth import get_user_model

    from accounts.services import onboarding_complete
    from catalog.selectors import movie_get
    from catalog.services import rating_upsert

    user, _ = get_user_model().objects.get_or_create(username="llm-bench", defaults={"email": "llm@example.com"})
    for movie_id, value in FAVOURITES:
        rating_upsert(user=user, movie=movie_get(movie_id=movie_id), value=value)
    onboarding_complete(user=user, favourite_genres=["Sci-Fi", "Adventure"])
    return user


def _llm(on: bool, url: str, deadline_s: float = 3.0) -> None:
    from django.conf import settings

    settings.LLM_BASE_URL = url if on else ""
    settings.LLM_MODEL, settings.LLM_API_KEY = "bench/fake-model", "sk-bench"
    settings.LLM_TIMEOUT_S, settings.LLM_DEADLINE_S = deadline_s, deadline_s
    settings.LLM_CACHE_TTL_S, settings.LLM_COOLDOWN_S = 3600, 30.0


def _ms(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    response = call()
    assert response.status_code == 200, response.content[:300]
    return (time.perf_counter() - started) * 1000


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "n": len(ordered)}


def measure(requests: int, delay_s: float, k: int) -> dict[str, Any]:
    """Off/on pairs, alternating; returns {name: stats} and a few facts about the run."""
    from django.test import Client

    from recommendations import llm_explain, serving

    provider = FakeProvider(delay_s)
    member = _member()
    client = Client()
    client.force_login(member)
    api = f"/v1/recommendations/user/{member.pk}?k={k}&explain=1"
    fill = f"/v1/recommendations/user/{member.pk}/explanations"
    samples: dict[str, list[float]] = {n: [] for n in (
        "api off", "api on warm", "api on warm, all cached", "api on warm, a new movie", "api on cold", "home off",
        "home on", "fill-in cold", "fill-in warm")}
    llm_explain.SENTENCE_KEY = "apex:llm:bench-warm:"
    for on in (False, True, True):  # warm up: engine, ranked pools, templates, the client's connection, the cache
        _llm(on, provider.url)
        client.get(api), client.get("/")
    warm_calls = home_calls = 0
    for i in range(requests):
        _llm(False, provider.url)
        samples["api off"].append(_ms(lambda: client.get(api)))
        samples["home off"].append(_ms(lambda: client.get("/")))
        _llm(True, provider.url)
        llm_explain.SENTENCE_KEY = "apex:llm:bench-warm:"  # the same cache every time (warmed up above)
        before = provider.calls
        took = _ms(lambda: client.get(api))
        samples["api on warm"].append(took)
        warm_calls += provider.calls - before
        samples["api on warm, all cached" if provider.calls == before else "api on warm, a new movie"].append(took)
        llm_explain.SENTENCE_KEY = f"apex:llm:bench-{i}:"  # every sentence a miss: one provider round trip
        samples["api on cold"].append(_ms(lambda: client.get(api)))
        llm_explain.SENTENCE_KEY = f"apex:llm:bench-fill-{i}:"
        html = client.get("/").content.decode()
        ids = list(dict.fromkeys(re.findall(r'<article class="movie-card[^>]*data-movie-id="(\d+)"', html)))
        before = provider.calls
        samples["home on"].append(_ms(lambda: client.get("/")))
        home_calls += provider.calls - before
        shown = {"movie_ids": ",".join(ids[:100])}
        samples["fill-in cold"].append(_ms(lambda: client.get(fill, shown)))  # noqa: B023 - called at once
        samples["fill-in warm"].append(_ms(lambda: client.get(fill, shown)))  # noqa: B023 - called at once
    result: dict[str, Any] = {name: _stats(values) for name, values in samples.items() if values}
    counts = llm_explain.llm_metrics()["counts"]
    result["counts"] = dict(counts)
    result["warm_calls"], result["home_calls"] = warm_calls, home_calls
    result["explained_shown"] = len(client.get(fill, {"movie_ids": ",".join(ids[:100])}).json()["items"])
    result["titles"] = len(serving.catalogue_titles(serving.get_engine()))
    result["tier"] = serving.current_tier_name()

    result["guard"] = guard_false_refusals(serving.get_engine())

    # a provider slower than the deadline: the first request waits for the deadline, the cool-down spares the rest
    slow = FakeProvider(delay_s=2.0)
    _llm(True, slow.url, deadline_s=0.5)
    llm_explain.llm_reset()
    llm_explain.SENTENCE_KEY = "apex:llm:bench-slow:"
    result["slow"] = [_ms(lambda: client.get(api)) for _ in range(3)]
    result["slow_counts"] = dict(llm_explain.llm_metrics()["counts"])
    return result


def guard_false_refusals(engine: Any) -> dict[str, Any]:
    """How often the title check refuses a sentence that names only the allowed titles: every catalogue movie, its
    driver a seeded random other movie, in the fake provider's wording."""
    import random

    from recommendations import llm_explain, serving

    guard = llm_explain.TitleGuard(serving.catalogue_titles(engine))
    rng = random.Random(0)
    ids = list(engine.movie_ids)
    refused = []
    for movie_id in ids:
        title = (engine.metadata(movie_id) or {}).get("title") or ""
        other = (engine.metadata(rng.choice(ids)) or {}).get("title") or ""
        facts = {"movie_id": movie_id, "title": title, "genres": [], "because_of": {"title": other}}
        answer = FakeProvider.answer([{"movie_id": movie_id, "title": title, "found_because": ["close to your taste"],
                                       "because_of": {"title": other}}], "m")
        sentence = json.loads(answer["choices"][0]["message"]["content"])["explanations"][0]["sentence"]
        if not guard.grounded(sentence, facts):
            refused.append(f"{title} / {other}")
    return {"checked": len(ids), "refused": len(refused), "examples": refused[:4]}


def _row(name: str, s: dict[str, float], base: dict[str, float] | None) -> str:
    added = f"{s['p50'] - base['p50']:+.1f}" if base is not None else ""
    return f"| {name} | {s['p50']:.1f} | {s['p95']:.1f} | {added} |"


def write(result: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    r = result
    lines = [
        START,
        f"Produced by `python benchmarks/llm_explanations.py --delay-ms {args.delay_ms} --requests {args.requests}` on "
        f"{platform.node()} ({os.cpu_count()} CPUs, shared), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"in-process through Django's full stack, ml-latest-small catalogue ({r['titles']} titles), serving tier "
        f"{r['tier']}, a member with {len(FAVOURITES)} ratings, lists of k={args.k}; the fake provider answers after "
        f"{args.delay_ms} ms. Off and on alternate request by request; {args.requests} requests each.",
        "",
        "| request | p50 ms | p95 ms | added p50 ms (vs off) |",
        "|---|---|---|---|",
        _row("API `explain=1`, LLM off", r["api off"], None),
        _row("API `explain=1`, LLM on, warm cache (all requests)", r["api on warm"], r["api off"]),
        *([_row(f"… of which every movie was cached (n={r['api on warm, all cached']['n']})",
                r["api on warm, all cached"], r["api off"])] if "api on warm, all cached" in r else []),
        *([_row(f"… of which the sampled slate held a new movie: one call (n={r['api on warm, a new movie']['n']})",
                r["api on warm, a new movie"], r["api off"])] if "api on warm, a new movie" in r else []),
        _row("API `explain=1`, LLM on, cold cache (one provider call)", r["api on cold"], r["api off"]),
        _row("home page (first paint), LLM off", r["home off"], None),
        _row("home page (first paint), LLM on", r["home on"], r["home off"]),
        _row("page fill-in `/explanations`, cold (after first paint)", r["fill-in cold"], None),
        _row("page fill-in `/explanations`, warm", r["fill-in warm"], None),
        "",
        f"The fill-in explained {r['explained_shown']} movies of the home page (the top picks and discover rows). "
        f"Provider calls made by the {args.requests} warm API requests: {r['warm_calls']} (the slate is sampled, so a "
        f"warm list can hold a movie not explained before); by the {args.requests} first paints: {r['home_calls']}. "
        f"Counters after the run: `{json.dumps(r['counts'], sort_keys=True)}`.",
        "",
        f"The title check on well-behaved sentences (every catalogue movie, naming only itself and a random movie "
        f"that drove it): {r['guard']['refused']} of {r['guard']['checked']} refused, e.g. "
        + "; ".join(f"`{e}`" for e in r["guard"]["examples"]) + " (recommended / driver); a refusal only keeps "
          "the template.",
        "",
        "A provider slower than the deadline (2 s answers, `LLM_DEADLINE_S=0.5`), three API requests in a row: "
        + ", ".join(f"{v:.0f} ms" for v in r["slow"])
        + f" — the first waits for the deadline and falls back to the templates; the cool-down spares the next ones "
          f"(counters `{json.dumps(r['slow_counts'], sort_keys=True)}`).",
        END,
    ]
    text = out.read_text() if out.exists() else ""
    section = "\n".join(lines)
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(text)
    logger.info("wrote %s", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=int, default=300, help="the fake provider's answer time")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "LLM_EXPLANATIONS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="apex-llm-") as tmp:
        server = PortalServer(Path(tmp))
        server.prepare()
        _setup_django(server)
        result = measure(args.requests, args.delay_ms / 1000, args.k)
        for name, s in result.items():
            logger.info("%s: %s", name, s)
        write(result, args.out, args)


if __name__ == "__main__":
    main()
