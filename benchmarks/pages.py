"""Server time of the portal's pages on the embedded catalog (ml-latest-small), written to docs/PAGES.md.

    .venv/bin/python benchmarks/pages.py [--requests 30] [--out docs/PAGES.md]
    .venv/bin/python benchmarks/pages.py --database postgres://postgres@127.0.0.1:5432/apex_bench_synthetic \
        --out docs/PAGES_AT_SCALE.md     # the same pages on a large imported catalog (benchmarks/imports.py)

Server time is measured in-process through Django's full request stack (middleware, sessions, views,
templates, database), without network or browser: the part of a page's latency the server owns. The
database is a throw-away copy of the browser journeys' prepared one (ml-latest-small imported, plus
TMDB/HetRec metadata when ../shared/data is present); a demo member has seven favourites. The serving
engine is the journeys' bundle (quickly trained on the catalog's ratings, Tier 1 torch ensemble on CPU).
Target: every page under 300 ms (issue 8), the admin's heavy list pages included (issue 20).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.support.portal import PortalServer  # noqa: E402

logger = logging.getLogger("pages")
TARGET_MS = 300.0
PAGES = [  # (name, path, signed in)
    ("home (visitor)", "/", False),
    ("home (member)", "/", True),
    ("rows fragment (live refresh)", "/rows/", True),
    ("movie detail + extras", "/movies/260/", True),
    ("movie extras fragment", "/movies/260/extras/", True),
    ("browse", "/movies/?genre=Sci-Fi", True),
    ("search (keyword)", "/search/?q=star+wars&mode=keyword", True),
    ("search (semantic)", "/search/?q=space+adventure&mode=semantic", True),
    ("onboarding", "/onboarding/", True),
    ("history", "/history/", True),
    ("watchlist", "/watchlist/", True),
    ("account", "/me/", True),
]
# The operators' heavy list pages (issue 20), as a superuser: ratings holds the catalog's 100k rows
ADMIN_PAGES = [
    ("admin: ratings list", "/admin/catalog/rating/"),
    ("admin: ratings list, page 100", "/admin/catalog/rating/?p=100"),
    ("admin: ratings, 4.5 stars", "/admin/catalog/rating/?value=4.5"),
    ("admin: ratings, one source", "/admin/catalog/rating/?source__exact={source}"),
    ("admin: movies list", "/admin/catalog/movie/"),
    ("admin: events list", "/admin/events/event/"),
]
FAVOURITES = [(1, 5.0), (260, 4.5), (2571, 4.5), (318, 4.0), (1214, 5.0), (4993, 4.5), (296, 3.5)]


def _setup_django(server: PortalServer, database: str = "") -> None:
    """This process becomes the journeys' server: same settings and serving bundle, and the journeys' database
    unless ``database`` names another (a PostgreSQL URL; its schema must be current, e.g. an imported catalog)."""
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(server.env())
    if database:
        os.environ["DATABASE_URL"] = database
        os.environ.setdefault("SECRET_KEY", "pages-benchmark-" + os.urandom(24).hex())
    import django

    django.setup()


def _member():  # noqa: ANN202
    from django.contrib.auth import get_user_model

    from accounts.services import onboarding_complete
    from catalog.selectors import movie_get
    from catalog.services import rating_upsert

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    for movie_id, value in FAVOURITES:
        rating_upsert(user=user, movie=movie_get(movie_id=movie_id), value=value)
    onboarding_complete(user=user, favourite_genres=["Sci-Fi", "Adventure"])
    return user


def _operator():  # noqa: ANN202
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username="bench-operator", defaults={"email": "operator@example.com", "is_staff": True, "is_superuser": True})
    return user


def measure(requests: int) -> list[dict[str, object]]:
    """Time each page ``requests`` times after 3 warm-up requests; returns one row per page."""
    from django.test import Client

    member, visitor, operator = Client(), Client(), Client()
    member.force_login(_member())
    operator.force_login(_operator())
    pages = [(name, path, member if signed_in else visitor) for name, path, signed_in in PAGES]
    source = _a_source()
    pages += [(name, path.format(source=source), operator) for name, path in ADMIN_PAGES]
    rows = []
    for name, path, client in pages:
        status = 0
        for _ in range(3):
            status = client.get(path).status_code
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            status = client.get(path).status_code
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        rows.append({"page": name, "path": path, "status": status, "p50": statistics.median(samples),
                     "p95": samples[min(len(samples) - 1, int(0.95 * len(samples)))], "max": samples[-1]})
        logger.info("%-30s %3d  p50 %6.1f ms  p95 %6.1f ms", name, status, rows[-1]["p50"], rows[-1]["p95"])
    return rows


def _ratings() -> int:
    from catalog.models import Rating

    return Rating.objects.count()


def _a_source() -> str:
    """The source of the catalog's first rating (ml-latest-small on the journeys' database)."""
    from catalog.models import Rating

    return Rating.objects.order_by("pk").values_list("source", flat=True).first() or "ml-latest-small"


def _movies() -> int:
    from catalog.models import Movie

    return Movie.objects.count()


def write(rows: list[dict[str, object]], out: Path, requests: int, database: str = "") -> None:
    from django.db import connection

    from recommendations import serving

    tier = serving.current_tier_name() or "no engine loaded (catalog rows)"
    loaded = serving.loaded_engine()
    models = ", ".join(loaded.weights) if loaded is not None else ""
    tier = f"{tier} ({models})" if models else tier
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine inflates every figure
    command = f"python benchmarks/pages.py --requests {requests}"
    where = "the embedded catalog (ml-latest-small), SQLite"
    if database:
        name = connection.settings_dict["NAME"]
        command += f" --database postgres://.../{name} --out {out.relative_to(REPO) if out.is_relative_to(REPO) else out}"
        where = f"the PostgreSQL database `{name}` ({_movies():,} movies)"
    lines = [
        "# Portal page server time",
        "",
        f"Produced by `{command}` on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {load} at the end.",
        f"In-process through Django's full stack on {where}, signed-in member",
        f"with {len(FAVOURITES)} ratings; serving: {tier}. Target: under {TARGET_MS:.0f} ms per page.",
        f"The admin pages are requested by a superuser; the ratings table holds {_ratings():,} rows. Their list pages",
        "count at most 10,001 rows (apex_site.admin_base.BoundedCountPaginator), never the whole table.",
        "",
        "| page | path | status | p50 ms | p95 ms | max ms | under target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "yes" if r["status"] == 200 and float(r["p95"]) < TARGET_MS else "**no**"
        lines.append(f"| {r['page']} | `{r['path']}` | {r['status']} | {r['p50']:.1f} | {r['p95']:.1f} | "
                     f"{r['max']:.1f} | {ok} |")
    out.write_text("\n".join(lines) + "\n")
    logger.info("wrote %s", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "PAGES.md")
    parser.add_argument("--database", default="", help="a PostgreSQL URL to measure instead of the journeys' SQLite "
                        "copy (e.g. the 25M-rating catalog benchmarks/imports.py --synthetic 25m leaves behind)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="apex-pages-") as tmp:
        server = PortalServer(Path(tmp))
        server.prepare()
        _setup_django(server, args.database)
        rows = measure(args.requests)
        write(rows, args.out.resolve(), args.requests, args.database)


if __name__ == "__main__":
    main()
