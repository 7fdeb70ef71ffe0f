"""Journey: with an LLM provider configured, the home page paints the template reasons, then "why this?" fills in
with the LLM's sentence. The server talks to a local OpenAI-compatible endpoint (its real openai client over HTTP)
that answers with the recorded chat-completions envelope, one grounded sentence per movie it was asked about."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from benchmarks.support.portal import PortalServer

from .conftest import sign_in
from .stripe_server import StripeServer

pytestmark = pytest.mark.browser

ENVELOPE = Path(__file__).parents[1] / "recommendations" / "llm_responses" / "chat_completion_ok.json"
PREFIX = "Picked for you:"


class ChatServer:
    """``POST /v1/chat/completions``: the recorded envelope, its content one sentence per movie in the request."""

    def __init__(self) -> None:
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                server.calls += 1
                movies = json.loads(body["messages"][1]["content"])["movies"]
                answer = json.loads(ENVELOPE.read_text())
                answer["choices"][0]["message"]["content"] = json.dumps({"explanations": [
                    {"movie_id": m["movie_id"], "sentence": f'{PREFIX} "{m["title"]}" is {m["found_because"][0]}.'}
                    for m in movies]})
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def llm_portal(portal: PortalServer, stripe_server: StripeServer, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[PortalServer, ChatServer]]:
    """A second server on a copy of the prepared database (``portal`` prepared it), with LLM explanations on."""
    chat = ChatServer()
    server = PortalServer(tmp_path_factory.mktemp("llm-portal"), extra_env={
        "APEX_FLOWS_STRIPE_HOST": stripe_server.url, "LLM_BASE_URL": chat.url, "LLM_MODEL": "openai/gpt-4o-mini",
        "LLM_API_KEY": "sk-or-v1-journey", "LLM_DEADLINE_S": "10", "LLM_TIMEOUT_S": "10"})
    server.prepare()
    server.start()
    try:
        yield server, chat
    finally:
        server.stop()
        chat.stop()


def test_the_home_page_shows_templates_first_then_the_llm_sentence(page: Any, llm_portal: Any) -> None:
    server, chat = llm_portal
    who = {"username": "llm-journey", "password": "Cinema-Paradiso-1988"}
    server.create_user(**who)
    server.shell(
        "from django.contrib.auth import get_user_model\n"
        "from accounts.services import onboarding_complete\n"
        "from catalog.selectors import movie_get\n"
        "from catalog.services import rating_upsert\n"
        "u = get_user_model().objects.get(username='llm-journey')\n"
        "for movie_id, value in [(1, 5.0), (260, 4.5), (2571, 4.5), (1214, 5.0)]:\n"
        "    rating_upsert(user=u, movie=movie_get(movie_id=movie_id), value=value)\n"
        "onboarding_complete(user=u, favourite_genres=['Sci-Fi'])\n")
    sign_in(page, server.url, who)

    first_paint = page.request.get(f"{server.url}/").text()  # what the server renders, before any script runs
    assert "data-explanations-url" in first_paint and PREFIX not in first_paint
    assert "Because you rated" in first_paint

    page.goto(f"{server.url}/")
    card = page.locator('#rows section[data-row="top-picks"] .card:has(details.why[data-explained="llm"])').first
    expect(card).to_be_visible()
    explained = card.locator("details.why")
    card.hover()  # "why this?" opens on hover
    title = card.locator(".movie-card-title").inner_text().rsplit(" (", 1)[0]
    expect(explained.locator("p")).to_contain_text(f'{PREFIX} "{title}"')
    expect(page.locator("body")).to_have_attribute("data-explanations", "filled")
    assert chat.calls >= 1
