"""Right after bin/setup: does a new member get personalised rows from the quick bundle, and how fast?

    cd <a set-up clone> && .venv/bin/python <repo>/benchmarks/first_rows.py

Run in the set-up checkout (its database and var/artifacts): makes (or reuses) the member ``first-rows``, rates
five movies (The Matrix, three Star Wars films, Jurassic Park) through the catalogue's service, loads the serving
engine as the first request does and prints its bundle, weights, load time, and the ten picks with their reasons.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")
if not Path("manage.py").exists():
    sys.exit("run this in the set-up checkout (where manage.py is)")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from catalog.models import Movie  # noqa: E402
from catalog.services.ratings import rating_upsert  # noqa: E402
from recommendations import serving  # noqa: E402

RATED = ((2571, 5.0), (1196, 4.5), (260, 5.0), (1210, 4.0), (480, 3.5))


def main() -> None:
    user, _ = get_user_model().objects.get_or_create(username="first-rows",
                                                     defaults={"email": "first-rows@example.com"})
    for movie_id, value in RATED:
        rating_upsert(user=user, movie=Movie.objects.get(pk=movie_id), value=value)
    start = time.perf_counter()
    engine = serving.get_engine()
    print(f"bundle {engine.manifest_version}, weights {engine.weights}, engine loaded in "
          f"{time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    picks = serving.picks_for_user(user_id=user.pk, k=10, exclude=set()) or []
    print(f"{len(picks)} personalised picks in {time.perf_counter() - start:.2f} s:")
    for movie_id, reason, _ in picks:
        print(f"  {Movie.objects.get(pk=movie_id).title} | {reason}")


if __name__ == "__main__":
    main()
