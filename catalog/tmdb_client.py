"""A small TMDB API client (httpx): movie details with credits and keywords, retries on 429/5xx."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

logger = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.themoviedb.org/3"


class TMDBError(Exception):
    """The TMDB API refused or failed a request."""


class TMDBClient:
    """TMDB v3 client; accepts a v3 API key or a v4 read-access token (sent as a Bearer token)."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, transport: httpx.BaseTransport | None = None,
                 timeout: float = 10.0, max_retries: int = 3, sleep: Any = time.sleep) -> None:
        if not api_key:
            raise TMDBError("TMDB_API_KEY is empty")
        bearer = api_key.startswith("eyJ")  # v4 tokens are JWTs
        self._client = httpx.Client(
            base_url=base_url, transport=transport, timeout=timeout,
            headers={"Accept": "application/json", **({"Authorization": f"Bearer {api_key}"} if bearer else {})},
            params={} if bearer else {"api_key": api_key})
        self._max_retries, self._sleep = max_retries, sleep

    def __enter__(self) -> TMDBClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def movie(self, tmdb_id: int) -> dict[str, Any] | None:
        """GET /movie/{id} with credits and keywords appended; None when TMDB does not know the id."""
        return self._get(f"/movie/{int(tmdb_id)}", {"append_to_response": "credits,keywords", "language": "en-US"})

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        for attempt in range(self._max_retries + 1):
            try:
                response = self._client.get(path, params=params)
            except httpx.TransportError as exc:
                if attempt == self._max_retries:
                    raise TMDBError(f"TMDB unreachable ({exc.__class__.__name__}: {exc})") from exc
                self._sleep(2**attempt)
                continue
            if response.status_code == 404:
                return None
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self._max_retries:
                    break
                wait = float(response.headers.get("Retry-After", 2**attempt))
                logger.warning("TMDB %s on %s, retrying in %.1f s", response.status_code, path, wait)
                self._sleep(min(wait, 30.0))
                continue
            if response.status_code == 401:
                raise TMDBError(f"TMDB rejected the API key: {response.json().get('status_message', '')}")
            response.raise_for_status()
            return response.json()
        raise TMDBError(f"TMDB kept failing on {path} (HTTP {response.status_code})")


def movie_fields_from_api(payload: dict[str, Any]) -> dict[str, Any]:
    """Catalog fields from one /movie response (with credits and keywords appended)."""
    collection = payload.get("belongs_to_collection") or None
    credits = payload.get("credits") or {}
    directors = [(p["id"], p["name"]) for p in credits.get("crew", []) if p.get("job") == "Director"]
    cast = [(p["id"], p["name"], p.get("character") or "", p.get("order", i))
            for i, p in enumerate(sorted(credits.get("cast", []), key=lambda p: p.get("order", 0))[:10])]
    return {
        "overview": payload.get("overview") or "",
        "tagline": payload.get("tagline") or "",
        "release_date": payload.get("release_date") or "",
        "runtime": payload.get("runtime") or None,
        "poster_path": payload.get("poster_path") or "",
        "vote_average": payload.get("vote_average"),
        "vote_count": payload.get("vote_count"),
        "popularity": payload.get("popularity"),
        "imdb_id": payload.get("imdb_id") or "",
        "collection": (collection["id"], collection["name"]) if collection else None,
        "keywords": [k["name"] for k in (payload.get("keywords") or {}).get("keywords", [])],
        "directors": directors,
        "cast": cast,
    }
