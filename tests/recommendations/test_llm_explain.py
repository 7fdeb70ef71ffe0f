"""LLM explanations through the real ``openai`` client, answered at the transport level with provider-shaped
responses (tests/recommendations/llm_responses/): good answers, timeouts, 429/500, malformed JSON, a sentence that
names a movie outside its facts, the cache, the portal's fill-in after first paint, and nothing changed when off."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from rest_framework.test import APIClient

from recommendations import llm_explain
from tests.ml_core.serving_bundle import tiny_metadata
from tests.recommendations.test_serving_api import alice_sci_fi, client_for, serving  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

RESPONSES = Path(__file__).parent / "llm_responses"
TITLES = frozenset(m["title"] for m in tiny_metadata().values())
Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def recorded(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=json.loads((RESPONSES / name).read_text()))


class FakeProvider:
    """An OpenAI-compatible endpoint at the transport level: records each request, answers from a queue."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[Answer] = []
        self.release = threading.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def facts_of(request: httpx.Request) -> list[dict[str, Any]]:
    """The movies (facts in words) a batch request asked about."""
    return json.loads(json.loads(request.content)["messages"][1]["content"])["movies"]  # type: ignore[no-any-return]


def echo_from_facts(request: httpx.Request) -> httpx.Response:
    """A well-behaved model: one sentence per movie, naming only the titles its facts give."""
    sentences = []
    for movie in facts_of(request):
        because = movie.get("because_of")
        sentence = (f'Because you rated "{because["title"]}" {because.get("your_rating")} stars, '
                    f'"{movie["title"]}" is {movie["found_because"][0]}.' if because
                    else f'"{movie["title"]}" is popular with everyone.')
        sentences.append({"movie_id": movie["movie_id"], "sentence": sentence})
    body = json.loads((RESPONSES / "chat_completion_ok.json").read_text())
    body["choices"][0]["message"]["content"] = json.dumps({"explanations": sentences})
    return httpx.Response(200, json=body)


@pytest.fixture
def provider(settings) -> Iterator[FakeProvider]:  # noqa: ANN001
    """LLM explanations on, talking to the fake provider through the real openai client."""
    fake = FakeProvider()
    settings.LLM_BASE_URL = "https://llm.example.test/api/v1"
    settings.LLM_API_KEY = "sk-or-v1-test"
    settings.LLM_MODEL = "openai/gpt-4o-mini"
    settings.LLM_TIMEOUT_S = 2.0
    settings.LLM_DEADLINE_S = 5.0
    settings.LLM_COOLDOWN_S = 30.0
    llm_explain.llm_use_client(openai.OpenAI(
        base_url=settings.LLM_BASE_URL, api_key=settings.LLM_API_KEY, max_retries=0, timeout=settings.LLM_TIMEOUT_S,
        http_client=httpx.Client(transport=httpx.MockTransport(fake.handle))))
    llm_explain.llm_reset()
    yield fake
    fake.release.set()
    llm_explain.llm_use_client(None)
    llm_explain.llm_reset()


def two_facts() -> list[dict[str, Any]]:
    """Facts of two Sci-Fi picks, each driven by a movie the member rated five stars."""
    meta = tiny_metadata()

    def facts(movie_id: int, anchor: int, shared: list[str]) -> dict[str, Any]:
        item = {"movie_id": movie_id, "title": meta[movie_id]["title"], "year": meta[movie_id]["year"],
                "genres": meta[movie_id]["genres"],
                "explanation": {"sources": ["embedding", "knowledge_graph"], "boosts": ["franchise"],
                                "contributions": {"sasrec": 0.41, "lightgcn": 0.22, "ease": -0.05},
                                "anchor_movie_id": anchor, "shared": shared,
                                "sentence": f"Because you rated {meta[anchor]['title']} 5 stars"}}
        return llm_explain.grounded_facts(item=item, anchor_title=meta[anchor]["title"], anchor_rating=5.0)

    return [facts(104, 101, ["franchise", "genre"]), facts(105, 103, ["genre"])]


# ---- the service: one batch per list, grounded, cached, time-boxed -------------------------------------------
def test_a_good_answer_gives_one_sentence_per_movie_from_one_request(provider: FakeProvider) -> None:
    provider.answers = [recorded("chat_completion_ok.json")]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert {i: n.status for i, n in found.items()} == {104: "generated", 105: "generated"}
    assert found[104].sentence.startswith('You gave "Sci-Fi film 0" five stars')
    assert len(provider.requests) == 1
    request = provider.requests[0]
    assert request.url.path == "/api/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-or-v1-test"
    body = provider.bodies()[0]
    assert body["model"] == "openai/gpt-4o-mini" and body["response_format"] == {"type": "json_object"}
    movies = facts_of(request)
    assert [m["movie_id"] for m in movies] == [104, 105]
    assert movies[0]["because_of"] == {"title": "Sci-Fi film 0 (1980)", "shared": ["same franchise", "similar genres"],
                                       "your_rating": 5.0}
    assert movies[0]["strongest_signals"] == [llm_explain.MODEL_WORDS["sasrec"], llm_explain.MODEL_WORDS["lightgcn"]]
    assert llm_explain.llm_metrics()["counts"] == {"batches": 1, "provider_calls": 1, "generated": 2}


def test_the_second_call_is_served_from_the_cache_without_a_request(provider: FakeProvider) -> None:
    provider.answers = [recorded("chat_completion_ok.json")]
    first = llm_explain.narrate(two_facts(), known_titles=TITLES)
    again = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert len(provider.requests) == 1
    assert {n.status for n in again.values()} == {"cached"}
    assert {i: n.sentence for i, n in again.items()} == {i: n.sentence for i, n in first.items()}


def test_changed_facts_are_a_cache_miss(provider: FakeProvider) -> None:
    provider.answers = [recorded("chat_completion_ok.json")]
    llm_explain.narrate(two_facts(), known_titles=TITLES)
    changed = two_facts()
    changed[0]["because_of"]["rating"] = 4.0  # the member re-rated the movie that drove it
    found = llm_explain.narrate(changed, known_titles=TITLES)
    assert len(provider.requests) == 2 and [m["movie_id"] for m in facts_of(provider.requests[1])] == [104]
    assert found[104].status == "generated" and found[105].status == "cached"


def test_a_sentence_naming_a_movie_outside_its_facts_is_rejected(provider: FakeProvider) -> None:
    provider.answers = [recorded("chat_completion_foreign_title.json")]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert found[104].status == "generated"
    assert found[105] == llm_explain.Narration(None, "rejected")
    assert llm_explain.llm_metrics()["counts"]["fallback_rejected"] == 1
    again = llm_explain.narrate(two_facts(), known_titles=TITLES)  # the refusal is remembered: no second request
    assert again[105] == llm_explain.Narration(None, "rejected") and again[104].status == "cached"
    assert len(provider.requests) == 1


@pytest.mark.parametrize("sentence", [
    'Fans of "Horror film 3" will like "Sci-Fi film 3".',  # a quoted title that is not in the facts
    'Like Comedy film 5, "Sci-Fi film 3" is a crowd pleaser.',  # an unquoted catalogue title
    'If you liked "Blade Runner", try "Sci-Fi film 3".',  # a quoted title the catalogue does not even have
    "Try \"Sci-Fi film 3\".\nIt is great.",  # not one sentence
])
def test_the_title_guard_refuses_titles_beyond_the_facts(sentence: str) -> None:
    assert not llm_explain.TitleGuard(TITLES).grounded(sentence, two_facts()[0])


def test_the_title_guard_accepts_the_facts_titles_with_or_without_year() -> None:
    guard = llm_explain.TitleGuard(TITLES)
    assert guard.grounded('You loved "Sci-Fi film 0 (1980)", so try "Sci-Fi film 3", more Sci-Fi.', two_facts()[0])
    mars = {"title": "Mars Attacks!", "genres": ["Comedy"], "because_of": {"title": "The Matrix"}}
    assert guard.grounded('Since you liked "Matrix", "Mars Attacks!" is close to your taste.', mars)


def test_a_timeout_falls_back_to_the_template_and_cools_down(provider: FakeProvider) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    provider.answers = [timeout]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert {n.status for n in found.values()} == {"timeout"} and all(n.sentence is None for n in found.values())
    again = llm_explain.narrate(two_facts(), known_titles=TITLES)  # within the cool-down: no request at all
    assert {n.status for n in again.values()} == {"cooldown"} and len(provider.requests) == 1
    counts = llm_explain.llm_metrics()["counts"]
    assert counts["fallback_timeout"] == 2 and counts["fallback_cooldown"] == 2


def test_a_provider_slower_than_the_deadline_falls_back(provider: FakeProvider, settings) -> None:  # noqa: ANN001
    settings.LLM_DEADLINE_S = 0.2

    def slow(request: httpx.Request) -> httpx.Response:
        provider.release.wait(10)  # held until the test has its answer
        return recorded("chat_completion_ok.json")

    provider.answers = [slow]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    provider.release.set()
    assert {n.status for n in found.values()} == {"timeout"}
    # the request went on after the deadline; its answer fills the cache for the next call (waited for, not timed)
    waited = threading.Event()
    for _ in range(200):
        again = llm_explain.narrate(two_facts(), known_titles=TITLES)
        if {n.status for n in again.values()} == {"cached"}:
            break
        waited.wait(0.025)
    assert {n.status for n in again.values()} == {"cached"} and len(provider.requests) == 1


@pytest.mark.parametrize(("status", "name"), [(429, "error_429.json"), (500, "error_500.json")])
def test_a_rate_limit_or_server_error_falls_back_without_retrying(provider: FakeProvider, status: int,
                                                                  name: str) -> None:
    provider.answers = [recorded(name, status)]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert {n.status for n in found.values()} == {"provider_error"}
    assert len(provider.requests) == 1
    assert llm_explain.llm_metrics()["counts"]["fallback_provider_error"] == 2


def test_malformed_json_falls_back(provider: FakeProvider) -> None:
    provider.answers = [recorded("chat_completion_malformed.json")]
    found = llm_explain.narrate(two_facts(), known_titles=TITLES)
    assert {n.status for n in found.values()} == {"malformed"}
    assert llm_explain.llm_metrics()["counts"]["fallback_malformed"] == 2


@pytest.mark.parametrize("content", [
    '```json\n{"explanations": [{"movie_id": 104, "sentence": "A."}]}\n```',
    'Here you go: [{"movie_id": "104", "sentence": "A."}] Enjoy!',
    '{"104": "A.", "oops": "B."}',
])
def test_answers_are_parsed_defensively(content: str) -> None:
    assert llm_explain.parse_answer(content) == {104: "A."}


@pytest.mark.parametrize("content", [None, "", "I cannot help with that.", '{"explanations": []}', "[1, 2]"])
def test_answers_without_usable_entries_are_refused(content: str | None) -> None:
    with pytest.raises(ValueError):
        llm_explain.parse_answer(content)


# ---- the API: explain=1 waits within the time box -----------------------------------------------------------
def test_explain_returns_llm_sentences_grounded_in_the_engine_facts(serving, alice_sci_fi, provider) -> None:  # noqa: ANN001, F811
    provider.answers = [echo_from_facts]
    r = client_for(alice_sci_fi).get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=4&explain=1")
    assert r.status_code == 200, r.content
    items = r.json()["items"]
    assert len(provider.requests) == 1 and len(facts_of(provider.requests[0])) == 4  # one request for the list
    for item in items:
        explanation = item["explanation"]
        facts = explanation["facts"]
        assert explanation["llm_status"] == "generated"
        assert facts["title"] == item["title"] and facts["template"] == explanation["sentence"]
        assert facts["because_of"]["movie_id"] in {101, 102, 103}  # one of the movies alice rated
        assert f'"{item["title"]}"' in explanation["llm_sentence"]
        assert f'"{facts["because_of"]["title"]}" {facts["because_of"]["rating"]} stars' in explanation["llm_sentence"]


def test_explain_falls_back_to_the_template_when_the_provider_fails(serving, alice_sci_fi, provider) -> None:  # noqa: ANN001, F811
    provider.answers = [recorded("error_500.json", 500)]
    r = client_for(alice_sci_fi).get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3&explain=1")
    assert r.status_code == 200
    for item in r.json()["items"]:
        assert item["explanation"]["llm_sentence"] is None and item["explanation"]["llm_status"] == "provider_error"
        assert item["explanation"]["sentence"].startswith("Because you rated Sci-Fi film")
    status = APIClient().get("/v1/platform/status").json()["llm_explanations"]
    assert status["enabled"] and status["counts"]["fallback_provider_error"] == 3


def test_without_llm_settings_nothing_changes(serving, alice_sci_fi, client, settings) -> None:  # noqa: ANN001, F811
    settings.LLM_BASE_URL = ""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no provider request may be made while LLM explanations are off")

    llm_explain.llm_use_client(openai.OpenAI(base_url="https://llm.example.test/v1", api_key="x",
                                             http_client=httpx.Client(transport=httpx.MockTransport(refuse))))
    try:
        api = client_for(alice_sci_fi)
        r = api.get(f"/v1/recommendations/user/{alice_sci_fi.pk}?k=3&explain=1")
        assert r.status_code == 200
        assert {tuple(sorted(i["explanation"])) for i in r.json()["items"]} == {
            ("anchor_movie_id", "boosts", "contributions", "sentence", "shared", "sources")}
        off = api.get(f"/v1/recommendations/user/{alice_sci_fi.pk}/explanations?movie_ids=104")
        assert off.status_code == 200 and off.json()["items"] == [] and off.json()["enabled"] is False
        assert "LLM_BASE_URL" in off.json()["detail"]
        client.force_login(alice_sci_fi)
        page = client.get("/").content.decode()
        assert 'id="rows"' in page and "data-explanations-url" not in page
        assert APIClient().get("/v1/platform/status").json()["llm_explanations"]["enabled"] is False
    finally:
        llm_explain.llm_use_client(None)


# ---- the portal: templates at first paint, LLM sentences on demand --------------------------------------------
def shown_ids(html: str) -> list[int]:
    return list(dict.fromkeys(int(i) for i in re.findall(r'<article class="movie-card[^>]*data-movie-id="(\d+)"', html)))


def test_the_home_page_renders_templates_and_its_fill_in_brings_the_llm_sentences(
        serving, alice_sci_fi, provider, client) -> None:  # noqa: ANN001, F811
    provider.answers = [echo_from_facts]
    client.force_login(alice_sci_fi)
    html = client.get("/").content.decode()
    url = f"/v1/recommendations/user/{alice_sci_fi.pk}/explanations"
    assert f'data-explanations-url="{url}"' in html
    assert provider.requests == []  # the first paint never waits on the provider
    assert "Because you rated Sci-Fi film" in html  # ...and shows the template sentences
    ids = shown_ids(html)
    r = client.get(url, {"movie_ids": ",".join(map(str, ids))})
    assert r.status_code == 200, r.content
    items = r.json()["items"]
    assert items and {i["movie_id"] for i in items} <= set(ids)
    assert len(provider.requests) == 1 and all(i["llm"] and i["status"] == "generated" for i in items)
    assert all(i["sentence"].startswith("Because you rated \"Sci-Fi film") for i in items)
    assert client.get(url, {"movie_ids": ",".join(map(str, ids))}).json()["items"][0]["status"] == "cached"
    assert len(provider.requests) == 1


def test_the_fill_in_explains_only_what_the_member_was_shown(serving, alice_sci_fi, bob, provider) -> None:  # noqa: ANN001, F811
    provider.answers = [echo_from_facts]
    api = client_for(alice_sci_fi)
    url = f"/v1/recommendations/user/{alice_sci_fi.pk}/explanations"
    assert api.get(url, {"movie_ids": "104,105"}).json()["items"] == []  # no page showed them: nothing to say
    assert provider.requests == []
    assert client_for(bob).get(url, {"movie_ids": "104"}).status_code == 403
    for bad in ("", "104,abc", ",".join(["1"] * 101)):
        assert api.get(url, {"movie_ids": bad}).status_code == 400
