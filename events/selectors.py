"""Event reads: a user's live feature state, recent items, unapplied events and the watchlist."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import Count, Min

from .models import Event

Kind = Event.Kind
ENGAGED = (Kind.CLICK, Kind.RATING, Kind.WATCH, Kind.WATCHLIST)


def event_recent_movie_ids(*, user_id: int, limit: int = 200) -> list[int]:
    """Movies the user engaged with (clicked, rated, watched, listed), oldest first, applied events only."""
    rows = (Event.objects.filter(user_id=user_id, kind__in=ENGAGED, applied_at__isnull=False)
            .order_by("-occurred_at", "-created_at").values_list("movie_id", flat=True)[:limit])
    return list(reversed(list(rows)))


def event_features_for(*, user: User, limit: int = 20) -> dict[str, Any]:
    """The caller's live feature state: recent sequence, counters by kind, and what is still in flight."""
    recent = list(Event.objects.filter(user=user, kind__in=ENGAGED, applied_at__isnull=False)
                  .select_related("movie").order_by("-occurred_at", "-created_at")[:limit])
    counts: dict[str, int] = dict(Event.objects.filter(user=user).order_by().values_list("kind").annotate(n=Count("id")))
    pending = Event.objects.filter(user=user, applied_at__isnull=True).count()
    return {
        "user_id": user.pk,
        "recent_sequence": [{"movie_id": e.movie_id, "title": e.movie.title, "kind": e.kind, "value": e.value,
                             "occurred_at": e.occurred_at.isoformat()} for e in recent],
        "counters": {kind: int(counts.get(kind, 0)) for kind in Kind.values},
        "ratings_mean": _mean([e.value for e in recent if e.kind == Kind.RATING and e.value is not None]),
        "pending_events": pending,
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def event_engagement_counts_since(*, since: Any, limit: int = 200) -> dict[int, int]:
    """movie id -> applied clicks, watches and watchlist adds at or after ``since`` (ratings are counted as the
    catalog ratings they become), the most engaged first, at most ``limit`` movies."""
    rows = (Event.objects.filter(occurred_at__gte=since, applied_at__isnull=False,
                                 kind__in=(Kind.CLICK, Kind.WATCH, Kind.WATCHLIST))
            .values("movie_id").annotate(n=Count("id")).order_by("-n", "movie_id")[:limit])
    return {row["movie_id"]: row["n"] for row in rows}


def event_unapplied_ids(*, limit: int = 10_000) -> list[str]:
    """Ids of relayed events not applied yet, oldest first."""
    rows = (Event.objects.filter(applied_at__isnull=True, relayed_at__isnull=False)
            .order_by("created_at").values_list("id", flat=True)[:limit])
    return [str(r) for r in rows]


def watchlist_movie_ids(*, user: User) -> list[int]:
    """Movies on the user's watchlist (latest watchlist event per movie is an add), newest first."""
    latest: dict[int, float] = {}
    for movie_id, value in (Event.objects.filter(user=user, kind=Kind.WATCHLIST)
                            .order_by("-created_at", "-id").values_list("movie_id", "value")):
        latest.setdefault(movie_id, value or 0.0)
    return [movie_id for movie_id, value in latest.items() if value > 0]



@dataclass(frozen=True)
class MemberOutcome:
    """One member's exposure under one experiment arm: distinct movies shown, how many of them drew the
    outcome event afterwards (within the attribution window), and the sum of those events' values."""

    arm_id: int
    user_id: int
    shown: int
    hits: int
    value_sum: float


def arm_member_outcomes(*, arm_ids: Sequence[int], kind: str, since: dt.datetime, until: dt.datetime,
                        window: dt.timedelta) -> list[MemberOutcome]:
    """Each (arm, member): the movies the arm's impressions showed them between ``since`` and ``until`` (a movie
    once, at its first showing), and which of them the member answered with a ``kind`` event (click, rating,
    watch) no later than ``window`` after that showing. Two queries; the join by (member, movie) is done here."""
    shown = Event.objects.filter(kind=Event.Kind.IMPRESSION, arm_id__in=list(arm_ids), occurred_at__gte=since,
                                 occurred_at__lte=until)
    return _outcomes(shown, "arm_id", kind=kind, since=since, until=until, window=window)


def member_outcomes(*, user_ids: Sequence[int], kind: str, since: dt.datetime, until: dt.datetime,
                    window: dt.timedelta) -> list[MemberOutcome]:
    """The same per member over every impression (any arm or none) between ``since`` and ``until`` (``arm_id`` 0):
    an experiment's pre-period covariate (CUPED)."""
    outcomes: list[MemberOutcome] = []
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), 500):  # bounded IN lists
        shown = Event.objects.filter(kind=Event.Kind.IMPRESSION, user_id__in=ids[start:start + 500],
                                     occurred_at__gte=since, occurred_at__lt=until)
        outcomes += _outcomes(shown, None, kind=kind, since=since, until=until, window=window)
    return outcomes


def _outcomes(shown_rows: Any, group: str | None, *, kind: str, since: dt.datetime, until: dt.datetime,
              window: dt.timedelta) -> list[MemberOutcome]:
    keys = (*((group,) if group else ()), "user_id", "movie_id")
    shown = shown_rows.values(*keys).annotate(first=Min("occurred_at")).order_by().values_list(*keys, "first")
    first: dict[tuple[int, int], list[tuple[int, dt.datetime]]] = defaultdict(list)  # (user, movie) -> arms
    for row in shown:
        arm_id, (user_id, movie_id, at) = (cast(int, row[0]), row[1:]) if group else (0, row)
        first[(user_id, movie_id)].append((arm_id, at))
    answers: dict[tuple[int, int], list[tuple[dt.datetime, float]]] = defaultdict(list)
    users = sorted({user for user, _ in first})
    for start in range(0, len(users), 500):  # bounded IN lists
        for user_id, movie_id, at, value in (
                Event.objects.filter(kind=kind, user_id__in=users[start:start + 500], occurred_at__gte=since,
                                     occurred_at__lte=until + window)
                .values_list("user_id", "movie_id", "occurred_at", "value").order_by("occurred_at")):
            if (user_id, movie_id) in first:
                answers[(user_id, movie_id)].append((at, 1.0 if value is None else float(value)))
    totals: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for (user_id, movie_id), arms in first.items():
        for arm_id, at in arms:
            hit = next((value for when, value in answers.get((user_id, movie_id), []) if at <= when <= at + window),
                       None)
            total = totals[(arm_id, user_id)]
            total[0] += 1
            if hit is not None:
                total[1] += 1
                total[2] += hit
    return [MemberOutcome(arm_id, user_id, int(t[0]), int(t[1]), float(t[2]))
            for (arm_id, user_id), t in sorted(totals.items())]
