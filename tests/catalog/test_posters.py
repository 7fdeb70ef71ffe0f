"""Poster files from TMDB's image CDN (catalog.posters.poster_cache_fill) through a recorded-style fake CDN."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from catalog.services import poster_cache_fill
from tests.visual_fixtures import poster_jpeg

JPEG = poster_jpeg("stripes")
BASE = "https://image.tmdb.org/t/p"


class FakeCdn:
    """TMDB's image CDN: known posters as image/jpeg, 404 otherwise; ``script`` overrides per path."""

    def __init__(self, posters: dict[str, bytes], script: dict[str, list[httpx.Response]] | None = None) -> None:
        self.posters, self.script, self.requests = posters, script or {}, []  # type: ignore[var-annotated]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.script.get(request.url.path):
            return self.script[request.url.path].pop(0)
        name = request.url.path.removeprefix("/t/p/w342")
        if name in self.posters:
            return httpx.Response(200, content=self.posters[name], headers={"Content-Type": "image/jpeg"})
        return httpx.Response(404, json={"status_code": 34, "status_message": "The resource could not be found."})


class FakeTime:
    """A clock that moves only when slept on, and the sleeps asked for."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []  # type: ignore[var-annotated]

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def fill(cdn: FakeCdn, cache: Path, movies: list[tuple[int, str]], time: FakeTime | None = None,
         interval: float = 0.0):  # noqa: ANN201
    time = time or FakeTime()
    return poster_cache_fill(movies=movies, cache_dir=cache, base_url=BASE, size="w342", interval_s=interval,
                             transport=httpx.MockTransport(cdn), sleep=time.sleep, clock=time.clock)


def test_posters_are_fetched_once_into_the_cache_and_a_rerun_fetches_nothing(tmp_path: Path) -> None:
    cdn = FakeCdn({"/a.jpg": JPEG, "/b.jpg": JPEG})
    report = fill(cdn, tmp_path, [(1, "/a.jpg"), (2, "/b.jpg")])
    assert report.fetched == 2 and report.cached == 0
    assert cdn.requests == ["/t/p/w342/a.jpg", "/t/p/w342/b.jpg"]
    assert (tmp_path / "w342" / "a.jpg").read_bytes() == JPEG
    assert report.posters == [(1, tmp_path / "w342" / "a.jpg"), (2, tmp_path / "w342" / "b.jpg")]

    again = fill(cdn, tmp_path, [(1, "/a.jpg"), (2, "/b.jpg")])
    assert again.fetched == 0 and again.cached == 2 and len(cdn.requests) == 2
    assert again.posters == report.posters


def test_a_half_written_file_from_a_killed_run_is_fetched_again(tmp_path: Path) -> None:
    (tmp_path / "w342").mkdir()
    (tmp_path / "w342" / "a.jpg.part").write_bytes(JPEG[:100])
    report = fill(FakeCdn({"/a.jpg": JPEG}), tmp_path, [(1, "/a.jpg")])
    assert report.fetched == 1 and (tmp_path / "w342" / "a.jpg").read_bytes() == JPEG


def test_requests_are_spaced_by_the_polite_interval(tmp_path: Path) -> None:
    time = FakeTime()
    fill(FakeCdn({"/a.jpg": JPEG, "/b.jpg": JPEG, "/c.jpg": JPEG}), tmp_path,
         [(1, "/a.jpg"), (2, "/b.jpg"), (3, "/c.jpg")], time=time, interval=0.25)
    assert time.sleeps == [0.25, 0.25]  # none before the first request, one before each later one


def test_a_429_is_retried_after_its_retry_after_and_then_stored(tmp_path: Path) -> None:
    time = FakeTime()
    cdn = FakeCdn({"/a.jpg": JPEG}, script={"/t/p/w342/a.jpg": [
        httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(503)]})
    report = fill(cdn, tmp_path, [(1, "/a.jpg")], time=time)
    assert report.fetched == 1 and len(cdn.requests) == 3
    assert time.sleeps == [3.0, 2.0]  # Retry-After, then exponential backoff


def test_a_cdn_that_keeps_failing_is_reported_not_raised(tmp_path: Path) -> None:
    cdn = FakeCdn({}, script={"/t/p/w342/a.jpg": [httpx.Response(502)] * 4})
    report = fill(cdn, tmp_path, [(1, "/a.jpg"), (2, "/gone.jpg")])
    assert report.failed == [1] and report.missing == [2] and report.posters == []
    assert not (tmp_path / "w342" / "a.jpg").exists()


def test_an_answer_that_is_not_an_image_is_not_cached(tmp_path: Path) -> None:
    cdn = FakeCdn({}, script={"/t/p/w342/a.jpg": [httpx.Response(200, text="<html>captive portal</html>",
                                                                 headers={"Content-Type": "text/html"})]})
    report = fill(cdn, tmp_path, [(1, "/a.jpg")])
    assert report.failed == [1] and not any(tmp_path.rglob("*.jpg"))


@pytest.mark.parametrize("path", ["", "a.jpg", "/../../etc/passwd", "/x/../../y.jpg", "/a.exe", "/a b.jpg"])
def test_poster_paths_not_of_tmdbs_form_are_never_requested(tmp_path: Path, path: str) -> None:
    cdn = FakeCdn({})
    report = fill(cdn, tmp_path, [(1, path)])
    assert report.invalid == [1] and cdn.requests == []
