"""The loopback load of tests/reliability/test_load.py: catalog reads, recommendations and events with an API key.

Run by that test as ``locust -f ... --headless`` in its own process (locust patches the standard library with
gevent on import, so it never runs inside pytest). ``APEX_LOAD_KEY`` is the API key, ``APEX_LOAD_USER`` its
member's id, ``APEX_LOAD_MOVIES`` comma-separated movie ids; at the end the per-status counts and connection
errors go to ``APEX_LOAD_COUNTS`` as JSON (locust's CSV has the latencies).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter

from locust import HttpUser, between, events, task

KEY = os.environ.get("APEX_LOAD_KEY", "")
MEMBER = os.environ.get("APEX_LOAD_USER", "0")
MOVIES = [int(m) for m in os.environ.get("APEX_LOAD_MOVIES", "1").split(",")]
WORDS = ["space", "family", "wedding", "night", "film", "saga"]
counts: Counter = Counter()
samples: list[str] = []  # the first few errors, for the test's message


@events.request.add_listener
def _count(request_type: str, name: str, response_time: float, response_length: int, response=None,  # noqa: ANN001
           context=None, exception=None, **kwargs: object) -> None:  # noqa: ANN001
    status = getattr(response, "status_code", 0) or 0
    counts["sent"] += 1
    if exception is not None and not status:
        counts["connection_errors"] += 1
    counts[f"status {status}"] += 1
    if (status >= 400 or exception is not None) and len(samples) < 5:
        samples.append(f"{name} {status}: {getattr(response, 'text', '')[:200] or exception}")


@events.quitting.add_listener
def _write_counts(environment: object, **kwargs: object) -> None:
    path = os.environ.get("APEX_LOAD_COUNTS")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({**counts, "samples": samples}, fh)


class ApiClient(HttpUser):
    """A partner app: mostly catalog reads, some recommendations, some events, all with its API key."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Api-Key {KEY}"

    def _get(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as r:
            if r.status_code == 429:
                r.success()  # counted apart (APEX_LOAD_COUNTS), not an error of the site
            elif r.status_code >= 400:
                r.failure(f"{r.status_code}: {r.text[:200]}")

    @task(4)
    def movie_list(self) -> None:
        self._get(f"/v1/movies?page={random.randint(1, 2)}&sort=popular", "/v1/movies")

    @task(3)
    def movie_detail(self) -> None:
        self._get(f"/v1/movies/{random.choice(MOVIES)}", "/v1/movies/{id}")

    @task(2)
    def search(self) -> None:
        self._get(f"/v1/search?q={random.choice(WORDS)}", "/v1/search")

    @task(3)
    def recommendations_for_member(self) -> None:
        self._get(f"/v1/recommendations/user/{MEMBER}?k=10", "/v1/recommendations/user/{id}")

    @task(2)
    def more_like_this(self) -> None:
        self._get(f"/v1/recommendations/id/{random.choice(MOVIES)}?k=10", "/v1/recommendations/id/{id}")

    @task(3)
    def post_event(self) -> None:
        body = {"movie_id": random.choice(MOVIES), "kind": random.choice(["click", "watch"]),
                "idempotency_key": uuid.uuid4().hex}
        with self.client.post("/v1/events", json=body, name="/v1/events", catch_response=True) as r:
            if r.status_code == 429:
                r.success()
            elif r.status_code != 202:
                r.failure(f"{r.status_code}: {r.text[:200]}")
