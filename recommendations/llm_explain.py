"""Optional LLM explanations: one natural sentence per recommended movie, written from the engine's grounded facts.

Off unless ``LLM_BASE_URL`` (an OpenAI-compatible endpoint: OpenRouter, vLLM, Ollama, OpenAI) and ``LLM_MODEL``
are set; then nothing else changes either (docs/LLM_EXPLANATIONS.md). With it on:

- the facts of each item (retrieval sources, the strongest models, boosts, the rated movie that drove it and the
  relations it shares) are the only content of the prompt, and every sentence that comes back is checked to
  name no title beyond that item's own facts (:class:`TitleGuard`); anything else is rejected;
- one request per list (structured JSON out, parsed defensively), only for the items the cache does not hold
  (key: hash of model, prompt version and facts);
- time-boxed: the client's own timeout, no retries, an overall deadline, and a cool-down after a failure; a
  slow, failing or unparsable provider leaves the engine's template sentence in place, counted in
  :func:`llm_metrics` (``/v1/platform/status``). A batch that finishes after its deadline still fills the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import openai
from django.conf import settings
from django.core.cache import cache
from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)

PROMPT_VERSION = "1"  # part of every cache key: a new prompt regenerates the sentences
SENTENCE_KEY = "apex:llm:sentence:"
FACTS_KEY = "apex:llm:facts:{user}:{movie}"  # what the portal showed a member, for the on-demand fill-in
FACTS_TTL_S = 3600
MAX_SENTENCE_CHARS = 300
REJECTED = ""  # cached in place of a sentence the title check refused
REJECTED_TTL_S = 3600
MAX_BATCH = 100
TOP_MODELS = 2  # the strongest contributing models named in the facts (their order, not their floats: stable keys)

SOURCE_WORDS = {"embedding": "close to your overall taste", "content": "similar genres and story to what you watched",
                "knowledge_graph": "shares a franchise, director or era with a movie you liked",
                "popular": "popular with everyone"}
MODEL_WORDS = {"sasrec": "the order in which you watched movies", "lightgcn": "what members with similar taste watched",
               "ease": "movies often rated together", "itemknn": "movies often rated together",
               "diffusion": "patterns across many members' histories", "kan": "patterns in your ratings",
               "neural_ode": "how your taste changed over time", "hyperbolic": "where it sits in the catalogue's "
               "hierarchy of tastes", "popularity": "how popular it is"}
BOOST_WORDS = {"franchise": "same franchise as a movie you liked", "director": "same director as a movie you liked",
               "era": "from the same era as a movie you liked", "quality": "very well rated",
               "no_shared_genre": "outside the genres you usually watch"}
RELATION_WORDS = {"franchise": "same franchise", "director": "same director", "genre": "similar genres",
                  "era": "same era"}

SYSTEM_PROMPT = (
    "You write one-sentence explanations of movie recommendations for a member of a movie website. "
    "Use ONLY the facts given for each movie; never add plot, cast, awards, reviews, trivia or anything else. "
    "Name no movie except that entry's own \"title\" and \"because_of\" title, each in double quotes exactly as "
    "given. Second person, one sentence, at most 30 words. Answer with JSON only: "
    "{\"explanations\": [{\"movie_id\": <int>, \"sentence\": \"<text>\"}]}, one entry per movie.")


@dataclass(frozen=True)
class LlmConfig:
    """The provider, read from settings (``LLM_*``)."""

    base_url: str
    api_key: str
    model: str
    timeout_s: float
    deadline_s: float
    cache_ttl_s: int
    cooldown_s: float


@dataclass
class Narration:
    """One item's outcome: the LLM sentence (None: keep the template) and why."""

    sentence: str | None
    status: str  # generated | cached | timeout | provider_error | malformed | rejected | missing | cooldown


@dataclass
class _Outcome:
    accepted: dict[int, str] = field(default_factory=dict)
    rejected: set[int] = field(default_factory=set)
    failure: str | None = None  # timeout | provider_error | malformed: the whole batch fell back


_metrics: Counter[str] = Counter()
_lock = threading.Lock()
_client_override: openai.OpenAI | None = None
_down_until = 0.0
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm-explain")


# ---- configuration, client, metrics -------------------------------------------------------------------------
def llm_config() -> LlmConfig | None:
    """The configured provider, or None when LLM explanations are off (``LLM_BASE_URL`` unset)."""
    if not getattr(settings, "LLM_BASE_URL", ""):
        return None
    return LlmConfig(base_url=settings.LLM_BASE_URL, api_key=settings.LLM_API_KEY, model=settings.LLM_MODEL,
                     timeout_s=settings.LLM_TIMEOUT_S, deadline_s=settings.LLM_DEADLINE_S,
                     cache_ttl_s=settings.LLM_CACHE_TTL_S, cooldown_s=settings.LLM_COOLDOWN_S)


def llm_enabled() -> bool:
    return llm_config() is not None


@lru_cache(maxsize=4)
def _client(base_url: str, api_key: str, timeout_s: float) -> openai.OpenAI:
    # one client (one connection pool) per process and configuration; retries would multiply the wait
    return openai.OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0)


def llm_client(config: LlmConfig) -> openai.OpenAI:
    """The process's client for ``config`` (or the one :func:`llm_use_client` installed)."""
    return _client_override or _client(config.base_url, config.api_key, config.timeout_s)


def llm_use_client(client: openai.OpenAI | None) -> None:
    """Use this client instead of building one (tests: a transport-level mock; operators: a proxying client)."""
    global _client_override
    _client_override = client


def _count(name: str, n: int = 1) -> None:
    if n:
        with _lock:
            _metrics[name] += n


def llm_metrics() -> dict[str, Any]:
    """This process's counters: batches, provider calls, and items by outcome (sentences vs template fallbacks)."""
    with _lock:
        counts = dict(_metrics)
    return {"enabled": llm_enabled(), "model": getattr(settings, "LLM_MODEL", "") or None, "counts": counts}


def llm_reset() -> None:
    """Zero the counters and end any cool-down (tests)."""
    global _down_until
    with _lock:
        _metrics.clear()
        _down_until = 0.0


# ---- facts ------------------------------------------------------------------------------------------------
def grounded_facts(*, item: dict[str, Any], anchor_title: str | None, anchor_rating: float | None
                   ) -> dict[str, Any]:
    """The facts an LLM sentence may use for one explained item (plain, JSON-serialisable, stable across requests)."""
    explanation = item["explanation"]
    contributions = explanation.get("contributions") or {}
    models = [m for m, share in sorted(contributions.items(), key=lambda kv: -kv[1]) if share > 0][:TOP_MODELS]
    anchor = explanation.get("anchor_movie_id")
    return {"movie_id": int(item["movie_id"]), "title": item.get("title"), "year": item.get("year"),
            "genres": list(item.get("genres") or []), "sources": list(explanation.get("sources") or []),
            "models": models, "boosts": list(explanation.get("boosts") or []),
            "shared": list(explanation.get("shared") or []),
            "because_of": None if anchor is None else {"movie_id": int(anchor), "title": anchor_title,
                                                       "rating": anchor_rating},
            "template": explanation.get("sentence", "")}


def _prompt_entry(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts in words, as the model sees them."""
    because = facts.get("because_of")
    entry: dict[str, Any] = {"movie_id": facts["movie_id"], "title": facts["title"], "year": facts["year"],
                             "genres": facts["genres"],
                             "found_because": [SOURCE_WORDS.get(s, s) for s in facts["sources"]],
                             "strongest_signals": [MODEL_WORDS.get(m, m) for m in facts["models"]],
                             "boosts": [BOOST_WORDS.get(b, b) for b in facts["boosts"]],
                             "plain_explanation": facts["template"]}
    if because and because.get("title"):
        entry["because_of"] = {"title": because["title"], "shared": [RELATION_WORDS.get(r, r) for r in facts["shared"]],
                               **({"your_rating": because["rating"]} if because.get("rating") is not None
                                  else {"you_watched_it": True})}
    return entry


def _messages(batch: list[dict[str, Any]]) -> list[ChatCompletionMessageParam]:
    user = {"movies": [_prompt_entry(f) for f in batch]}
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(user, ensure_ascii=False)}]


def _sentence_key(model: str, facts: dict[str, Any]) -> str:
    blob = json.dumps({"v": PROMPT_VERSION, "model": model, "facts": facts}, sort_keys=True, ensure_ascii=False)
    return SENTENCE_KEY + hashlib.sha256(blob.encode()).hexdigest()


# ---- the answer: parsing and grounding --------------------------------------------------------------------
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_answer(content: str | None) -> dict[int, str]:
    """``{movie_id: sentence}`` from the model's text; ValueError when it is not the JSON asked for.

    Accepts ``{"explanations": [...]}``, a bare list of ``{"movie_id", "sentence"}`` and ``{"<id>": "sentence"}``,
    inside code fences or surrounded by prose; entries that are not an id with a string are skipped."""
    if not content or not content.strip():
        raise ValueError("empty answer")
    text = _FENCE.sub("", content.strip())
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON in the answer")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("explanations"), list):
        data = data["explanations"]
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(data, list):
        pairs = [(e.get("movie_id"), e.get("sentence")) for e in data if isinstance(e, dict)]
    elif isinstance(data, dict):
        pairs = data.items()
    else:
        raise ValueError("the JSON is neither a list nor an object")
    found: dict[int, str] = {}
    for movie_id, sentence in pairs:
        try:
            key = int(movie_id)
        except (TypeError, ValueError):
            continue
        if isinstance(sentence, str) and sentence.strip():
            found[key] = " ".join(sentence.split()).strip("\"'“” ")
    if not found:
        raise ValueError("no usable entries in the answer")
    return found


_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,200})[\"“”«»]")
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE = re.compile(r"^(the|a|an|l'|le|la|les|el|il|der|die|das)\s+", re.IGNORECASE)


def _variants(title: str) -> set[str]:
    """A title as people write it: as stored, without a trailing "(year)", without a leading article."""
    base = _YEAR.sub("", title).strip()
    return {v for v in (title.strip(), base, _ARTICLE.sub("", base)) if v}


def _fold(text: str) -> str:
    """Case and trailing punctuation do not matter when a quote is compared with a title ("Mars Attacks!,")."""
    return text.strip().rstrip(",.;:!?…").strip().casefold()


class TitleGuard:
    """Rejects a sentence that names a movie outside its facts: every quoted span must be one of the allowed
    titles, and no other catalogue title (two or more words, or one word of five letters or more, matched
    case-sensitively as whole words) may appear."""

    def __init__(self, known_titles: Iterable[str]) -> None:
        titles = {v for t in known_titles if t for v in _variants(t)}
        self._known = sorted((t for t in titles if " " in t or len(t) >= 5), key=len, reverse=True)

    def grounded(self, sentence: str, facts: dict[str, Any]) -> bool:
        if not sentence or len(sentence) > MAX_SENTENCE_CHARS or "\n" in sentence:
            return False
        because = facts.get("because_of") or {}
        allowed = {v for t in (facts.get("title"), because.get("title")) if t for v in _variants(str(t))}
        folded = {_fold(a) for a in allowed}
        for quoted in _QUOTED.findall(sentence):
            if _fold(quoted) not in folded and _fold(_YEAR.sub("", quoted.strip())) not in folded:
                return False
        rest = sentence
        for name in sorted(allowed | set(facts.get("genres") or []), key=len, reverse=True):
            rest = re.sub(re.escape(name), " ", rest, flags=re.IGNORECASE)
        for title in self._known:
            if title in rest and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", rest):
                return False
        return True


@lru_cache(maxsize=2)
def _guard(titles: frozenset[str]) -> TitleGuard:
    return TitleGuard(titles)


# ---- the provider call ------------------------------------------------------------------------------------
def _generate(config: LlmConfig, batch: list[dict[str, Any]], guard: TitleGuard) -> _Outcome:
    """One chat-completions request for the batch; accepted sentences are cached (even after the deadline)."""
    _count("provider_calls")
    try:
        response = llm_client(config).chat.completions.create(
            model=config.model, messages=_messages(batch),
            response_format={"type": "json_object"}, temperature=0.2, max_tokens=80 * len(batch) + 50)
        content = response.choices[0].message.content if response.choices else None
    except openai.APITimeoutError:
        return _Outcome(failure="timeout")
    except openai.APIError as exc:  # 429, 5xx, connection refused, a body that is not a completion
        log.warning("LLM provider failed: %s", exc.__class__.__name__)
        return _Outcome(failure="provider_error")
    try:
        answer = parse_answer(content)
    except ValueError as exc:
        log.warning("LLM answer not usable: %s", exc)
        return _Outcome(failure="malformed")
    outcome = _Outcome()
    for facts in batch:
        sentence = answer.get(facts["movie_id"])
        if sentence is None:
            continue
        if guard.grounded(sentence, facts):
            outcome.accepted[facts["movie_id"]] = sentence
        else:
            outcome.rejected.add(facts["movie_id"])
    by_id = {f["movie_id"]: f for f in batch}
    if outcome.accepted:
        cache.set_many({_sentence_key(config.model, by_id[i]): s for i, s in outcome.accepted.items()},
                       config.cache_ttl_s)
    if outcome.rejected:  # remembered as rejected for a while, so the same facts do not cost a call per page
        cache.set_many({_sentence_key(config.model, by_id[i]): REJECTED for i in outcome.rejected},
                       min(REJECTED_TTL_S, config.cache_ttl_s))
    return outcome


def _in_cooldown() -> bool:
    return time.monotonic() < _down_until


def _start_cooldown(config: LlmConfig) -> None:
    global _down_until
    _down_until = time.monotonic() + config.cooldown_s


def narrate(facts_list: list[dict[str, Any]], *, known_titles: Collection[str]) -> dict[int, Narration]:
    """An LLM sentence (or the reason there is none) per item: cache first, then one time-boxed batch request."""
    config = llm_config()
    if config is None or not facts_list:
        return {}
    facts_list = facts_list[:MAX_BATCH]
    _count("batches")
    keys = {f["movie_id"]: _sentence_key(config.model, f) for f in facts_list}
    hits = cache.get_many(list(keys.values()))
    result = {i: Narration(hits[k] or None, "cached" if hits[k] else "rejected") for i, k in keys.items() if k in hits}
    misses = [f for f in facts_list if f["movie_id"] not in result]
    if misses and _in_cooldown():
        result.update({f["movie_id"]: Narration(None, "cooldown") for f in misses})
    elif misses:
        guard = _guard(frozenset(known_titles))
        future = _pool.submit(_generate, config, misses, guard)
        try:
            outcome = future.result(timeout=config.deadline_s)
        except FutureTimeout:
            outcome = _Outcome(failure="timeout")  # the request goes on and caches what it gets
        if outcome.failure in ("timeout", "provider_error"):
            _start_cooldown(config)
        for f in misses:
            i = f["movie_id"]
            if outcome.failure:
                result[i] = Narration(None, outcome.failure)
            elif i in outcome.accepted:
                result[i] = Narration(outcome.accepted[i], "generated")
            else:
                result[i] = Narration(None, "rejected" if i in outcome.rejected else "missing")
    for narration in result.values():
        _count(narration.status if narration.sentence else f"fallback_{narration.status}")
    return result


def narrate_items(items: list[dict[str, Any]], *, known_titles: Collection[str]) -> None:
    """Set ``llm_sentence`` (None: show ``sentence``) and ``llm_status`` on every explained item with facts."""
    facts = [i["explanation"]["facts"] for i in items if isinstance(i.get("explanation"), dict)
             and "facts" in i["explanation"]]
    found = narrate(facts, known_titles=known_titles)
    for item in items:
        explanation = item.get("explanation")
        if isinstance(explanation, dict) and "facts" in explanation:
            narration = found.get(int(item["movie_id"]), Narration(None, "missing"))
            explanation.update(llm_sentence=narration.sentence, llm_status=narration.status)


# ---- the portal: remember what a page showed, fill it in on demand -----------------------------------------
def facts_remember(*, user_id: int, items: list[dict[str, Any]]) -> None:
    """Keep the facts of the explained items a page is about to show, so the page can ask for their sentences."""
    found = {FACTS_KEY.format(user=user_id, movie=int(i["movie_id"])): i["explanation"]["facts"] for i in items
             if isinstance(i.get("explanation"), dict) and "facts" in i["explanation"]}
    if found:
        cache.set_many(found, FACTS_TTL_S)


def facts_recall(*, user_id: int, movie_ids: list[int]) -> list[dict[str, Any]]:
    """The remembered facts of those of ``movie_ids`` this member was shown (others are left out)."""
    keys = [FACTS_KEY.format(user=user_id, movie=m) for m in dict.fromkeys(movie_ids)]
    found = cache.get_many(keys)
    return [found[k] for k in keys if k in found]
