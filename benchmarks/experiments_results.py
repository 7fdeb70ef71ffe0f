"""What an experiment costs: bucketing per request, how exactly shares are kept, and computing results from rows.

    .venv/bin/python benchmarks/experiments_results.py [--members 1000,10000] [--out docs/RUNNING_EXPERIMENTS.md]

Runs on a throw-away in-memory SQLite test database (PostgreSQL when DATABASE_URL is set: a test database beside
it). Each member of a two-arm experiment is shown 10 movies and clicks each with probability 0.10 (control) or
0.12 (treatment); the rows are inserted directly, then ``experiment_results`` (the admin page and the API) and
``experiment_look`` (the monitor's run) are timed. With ``--out`` the table replaces the section between
``<!-- experiments:cost -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- experiments:cost -->"


def _setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apex_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import setup_databases, setup_test_environment

    class _NoMigrations(dict):  # the tables straight from the models (syncdb): seconds instead of minutes
        def __contains__(self, item: object) -> bool:
            return True

        def __getitem__(self, item: str) -> None:
            return None

    settings.MIGRATION_MODULES = _NoMigrations()

    setup_test_environment()
    setup_databases(verbosity=0, interactive=False)


def _bucketing(n_calls: int, n_ids: int) -> dict[str, float]:
    from experiments.assignment import bucket, member_arm

    snapshot = {"id": 1, "salt": "0123456789abcdef", "arms": [
        {"id": 1, "name": "control", "p": 0.5, "overrides": {}},
        {"id": 2, "name": "b", "p": 0.3, "overrides": {"epsilon": 0.1}},
        {"id": 3, "name": "c", "p": 0.2, "overrides": {"mmr_lambda": 0.9}}]}
    start = time.perf_counter()
    for user_id in range(n_calls):
        member_arm(user_id=user_id, published=snapshot)
    per_call_us = (time.perf_counter() - start) / n_calls * 1e6
    counts = {1: 0, 2: 0, 3: 0}
    for user_id in range(n_ids):
        counts[bucket(snapshot=snapshot, user_id=user_id)["id"]] += 1
    worst = max(abs(counts[a["id"]] / n_ids - a["p"]) for a in snapshot["arms"])
    return {"per_call_us": per_call_us, "worst_share_error": worst, "ids": n_ids}


def _rows(members: int, seed: int = 0) -> tuple[object, float]:
    """A running two-arm experiment with ``members`` members, 10 impressions each and their clicks; insert seconds."""
    import numpy as np
    from django.contrib.auth.models import User
    from django.utils import timezone

    from catalog.models import Movie
    from events.models import Event
    from experiments.models import Arm, Experiment, ResultSnapshot

    ResultSnapshot.objects.all().delete()
    Event.objects.all().delete()
    Experiment.objects.all().delete()
    User.objects.filter(username__startswith="bench").delete()
    rng = np.random.default_rng(seed)
    now = timezone.now()
    experiment = Experiment.objects.create(name=f"bench {members}", status="running",
                                           started_at=now - dt.timedelta(hours=2))
    arms = [Arm.objects.create(experiment=experiment, name="control", share=0.5, kind="exploration", config={},
                               is_control=True),
            Arm.objects.create(experiment=experiment, name="treatment", share=0.5, kind="exploration",
                               config={"epsilon": 0.1})]
    movies = list(Movie.objects.values_list("id", flat=True)[:50])
    if len(movies) < 50:
        Movie.objects.bulk_create([Movie(id=900_000 + i, title=f"bench movie {i}") for i in range(50)])
        movies = list(Movie.objects.values_list("id", flat=True)[:50])
    started = time.perf_counter()
    users = User.objects.bulk_create([User(username=f"bench{i}") for i in range(members)])
    shown_at = now - dt.timedelta(hours=1)
    batch: list[Event] = []
    for i, user in enumerate(users):
        arm = arms[i % 2]
        rate = 0.10 if arm.is_control else 0.12
        for movie_id in rng.choice(movies, 10, replace=False).tolist():
            batch.append(Event(user=user, movie_id=movie_id, kind="impression", propensity=0.5, position=0,
                               arm_id=arm.pk, idempotency_key=f"i{i}-{movie_id}", occurred_at=shown_at))
            if rng.random() < rate:
                batch.append(Event(user=user, movie_id=movie_id, kind="click", arm_id=arm.pk,
                                   idempotency_key=f"c{i}-{movie_id}", occurred_at=shown_at + dt.timedelta(minutes=3)))
        if len(batch) > 20_000:
            Event.objects.bulk_create(batch)
            batch = []
    Event.objects.bulk_create(batch)
    return experiment, time.perf_counter() - started


def _timed(call: object, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="1000,10000", help="comma-separated experiment sizes")
    parser.add_argument("--out", type=Path, help="a markdown file whose experiments:cost section is replaced")
    args = parser.parse_args()
    _setup()
    from django.db import connection

    from experiments.selectors import experiment_results
    from experiments.services import experiment_look

    b = _bucketing(100_000, 1_000_000)
    lines = [f"`python benchmarks/experiments_results.py --members {args.members}` on {platform.machine()}, "
             f"{os.cpu_count()} cores (shared), database {connection.vendor}:", "",
             f"- bucketing a member (`member_arm` with the snapshot read): {b['per_call_us']:.1f} µs per request; over "
             f"{b['ids']:,} ids the largest share error of a 50/30/20 split was {b['worst_share_error']:.4f}.", "",
             "| members | impression rows | results (page, API) | look (monitor) | control CTR | treatment CTR |"
             " always-valid p |", "|---|---|---|---|---|---|---|"]
    for members in [int(m) for m in args.members.split(",")]:
        experiment, _ = _rows(members)
        results = experiment_results(experiment=experiment)  # type: ignore[arg-type]
        page = _timed(lambda e=experiment: experiment_results(experiment=e))
        look = _timed(lambda e=experiment: experiment_look(experiment=e), repeats=1)
        control, treatment = results.arms
        lines.append(f"| {members:,} | {10 * members:,} | {page:.2f} s | {look:.2f} s | {control.estimate:.4f} | "
                     f"{treatment.estimate:.4f} | {treatment.p_value:.3g} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        text = args.out.read_text()
        section = f"{MARK}\n{table}\n{MARK}"
        text = (re.sub(re.escape(MARK) + ".*?" + re.escape(MARK), lambda _: section, text, flags=re.S)
                if MARK in text else text.rstrip("\n") + f"\n\n## What it costs\n\n{section}\n")
        args.out.write_text(text)


if __name__ == "__main__":
    main()
