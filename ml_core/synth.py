"""A seeded generator of MovieLens-shaped interaction logs at any size (``python -m ml_core synth``).

It writes a MovieLens-layout folder (``ratings.csv``, ``movies.csv``, ``links.csv``) that every command
reads like a real one. The generative model, in the order it draws:

* **items**: a Zipf-like popularity (weight ∝ rank^-``popularity_exponent``, ranks shuffled over the ids),
  one to three genres from MovieLens' genre frequencies, a release time (most titles recent, a long tail
  back to 1900) and a quality that leans a little towards popular titles;
* **tastes**: ``clusters`` latent taste clusters, each a Dirichlet preference over genres; an item's weight
  in a cluster is its popularity times ``exp(taste_strength · affinity)`` — so a model that learns the
  clusters beats popularity, as on real data;
* **members**: log-normal activity (σ = ``activity_sigma``, at least ``min_per_user`` ratings, scaled so
  the total is ``ratings``), one to three clusters with Dirichlet weights, a first visit spread over the
  log's years, and **sessions**: bursts of ratings seconds apart, some in the same second;
* **time**: the log's span is cut into epochs; in each, only released titles can be drawn and a title's
  weight is boosted right after release and decays (new releases and trends: drift);
* **ratings**: member bias + item quality + taste affinity + noise, rounded to half stars by members who use
  them and to whole stars by the others.

It streams: members are drawn and written a chunk at a time, so memory is flat in the number of ratings
(the per-item tables are O(items × clusters × epochs), float32). Everything follows from ``seed``.
:func:`shape_profile` measures a log's shape so a synthetic set can be set beside ml-100k and ml-latest-small
(``benchmarks/synth_shape.py`` writes ``docs/SYNTHETIC_DATA.md``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# MovieLens' genres with their share of ml-latest-small's titles (movies.csv genre counts / 9,742)
GENRES: dict[str, float] = {
    "Drama": 0.449, "Comedy": 0.385, "Thriller": 0.194, "Action": 0.187, "Romance": 0.166, "Adventure": 0.137,
    "Crime": 0.123, "Sci-Fi": 0.101, "Horror": 0.100, "Fantasy": 0.080, "Children": 0.068, "Animation": 0.063,
    "Mystery": 0.059, "Documentary": 0.045, "War": 0.039, "Musical": 0.034, "Western": 0.017, "IMAX": 0.016,
    "Film-Noir": 0.009,
}
YEAR_S = 365.25 * 86_400
LOG_START = 946_684_800  # 2000-01-01: the log's first rating
LOG_END = 1_704_067_200  # 2024-01-01


@dataclass(frozen=True)
class SynthSpec:
    """What to generate; every field has a default that makes sense at any size."""

    users: int
    items: int
    ratings: int
    seed: int = 0
    clusters: int = 16
    epochs: int = 24
    popularity_exponent: float = 1.0
    taste_strength: float = 1.5
    activity_sigma: float = 1.05
    min_per_user: int = 20
    half_star_users: float = 0.55
    returning_users: float = 0.25
    rating_intercept: float = 3.0
    rating_noise: float = 0.85
    order_noise: float = 7.0
    trend_boost: float = 3.0
    trend_years: float = 1.0
    chunk_users: int = 10_000

    def __post_init__(self) -> None:
        if self.users < 1 or self.items < 2 or self.ratings < self.users:
            raise ValueError(f"need users >= 1, items >= 2 and ratings >= users (got {self.users} users, "
                             f"{self.items} items, {self.ratings} ratings)")
        if self.ratings > self.users * self.items // 2:
            raise ValueError(f"{self.ratings} ratings cannot fit {self.users} users x {self.items} items at most "
                             "half full; add users or items")


# MovieLens sizes (users, rated movies, ratings), for --scale
SCALES: dict[str, tuple[int, int, int]] = {
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "25m": (162_541, 59_047, 25_000_095),
    "32m": (200_948, 84_432, 32_000_204),
}


@dataclass
class _Catalogue:
    release: np.ndarray  # int64 seconds
    year: np.ndarray  # int64
    genres: list[list[int]]
    quality: np.ndarray  # float64
    affinity: np.ndarray  # (clusters, items) float32: taste of each cluster for each item, standardised
    cdf: np.ndarray  # (clusters, epochs, items) float32: cumulative draw weights
    by_release: np.ndarray  # item indices, oldest release first
    log_popularity: np.ndarray  # float64 (items,)


def _catalogue(spec: SynthSpec, rng: np.random.Generator) -> _Catalogue:
    n = spec.items
    rank = rng.permutation(n) + 1  # item i's popularity rank
    popularity = rank.astype(np.float64) ** -spec.popularity_exponent
    # release: most titles recent, a long tail back to 1900
    age_years = rng.exponential(22.0, n)  # about a third of the titles predate the log, as in MovieLens
    release = (LOG_END - age_years * YEAR_S).astype(np.int64)
    release = np.maximum(release, -2_208_988_800)  # 1900-01-01
    year = (1970 + release / YEAR_S).astype(np.int64)
    shares = np.array(list(GENRES.values()))
    n_genres = np.minimum(1 + rng.poisson(0.8, n), 3)
    genres = [sorted(rng.choice(len(GENRES), size=int(k), replace=False, p=shares / shares.sum()).tolist())
              for k in n_genres]
    membership = np.zeros((n, len(GENRES)), dtype=np.float64)
    for i, gs in enumerate(genres):
        membership[i, gs] = 1.0 / len(gs)
    taste = rng.dirichlet(np.full(len(GENRES), 0.35), size=spec.clusters)  # (clusters, genres)
    raw = taste @ membership.T  # (clusters, items)
    affinity = (raw - raw.mean(axis=1, keepdims=True)) / (raw.std(axis=1, keepdims=True) + 1e-9)
    log_pop = np.log(popularity)
    quality = 0.25 * (log_pop - log_pop.mean()) / (log_pop.std() + 1e-9) + rng.normal(0.0, 0.45, n)
    edges = np.linspace(LOG_START, LOG_END, spec.epochs + 1)
    cdf = np.empty((spec.clusters, spec.epochs, n), dtype=np.float32)
    taste_weight = np.exp(spec.taste_strength * affinity / 2.0)  # (clusters, items)
    for e, begin in enumerate(edges[:-1]):
        # drawable in an epoch: the titles released before it starts (so no rating precedes its title's release),
        # boosted right after their release
        since = (begin - release) / YEAR_S
        trend = np.where(release <= begin, 1.0 + spec.trend_boost * np.exp(-np.maximum(since, 0.0) / spec.trend_years),
                         0.0)
        weights = popularity * trend  # (items,)
        for c in range(spec.clusters):
            cum = np.cumsum(weights * taste_weight[c])
            cdf[c, e] = (cum / cum[-1]).astype(np.float32)
    return _Catalogue(release, year, genres, quality, affinity.astype(np.float32), cdf,
                      np.argsort(release, kind="stable"), log_pop)


def _activity(spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Ratings per member: log-normal, at least ``min_per_user``, at most half the catalogue, summing to ``ratings``."""
    cap = max(spec.min_per_user, spec.items // 2)
    raw = rng.lognormal(0.0, spec.activity_sigma, spec.users)
    scale = spec.ratings / raw.sum()
    for _ in range(60):  # rescale until the clipped counts add up (clipping moves the sum)
        counts = np.clip(raw * scale, spec.min_per_user, cap)
        total = counts.sum()
        if abs(total - spec.ratings) < 0.5:
            break
        scale *= spec.ratings / total
    counts = np.floor(counts).astype(np.int64)
    short = spec.ratings - int(counts.sum())
    room = np.flatnonzero(counts < cap)
    if short > 0 and len(room):
        extra = rng.choice(room, size=short, replace=short > len(room))
        np.add.at(counts, extra, 1)
    capped: np.ndarray = np.minimum(counts, cap)
    return capped


def _member_chunk(spec: SynthSpec, cat: _Catalogue, rng: np.random.Generator, first_user: int,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, item ids, half-star ratings, timestamps) for one chunk of members, user-major."""
    n_users = len(counts)
    total = int(counts.sum())
    owner = np.repeat(np.arange(n_users), counts)
    # tastes: one to three clusters per member
    k = np.minimum(1 + rng.poisson(0.7, n_users), 3)
    mix = np.zeros((n_users, spec.clusters))
    for u in range(n_users):
        chosen = rng.choice(spec.clusters, size=int(k[u]), replace=False)
        mix[u, chosen] = rng.dirichlet(np.ones(int(k[u])))
    mix_cdf = np.cumsum(mix, axis=1)
    # sessions: a first visit, an active span, bursts of ratings seconds apart
    first = rng.uniform(LOG_START, LOG_END - 86_400, n_users)
    # most members rate everything in one sitting; some come back over months
    span = np.minimum(rng.exponential(0.6 * YEAR_S, n_users) * (rng.random(n_users) < spec.returning_users),
                      LOG_END - first - 1)
    sessions = np.minimum(1 + rng.poisson(np.log1p(counts / 15.0)), counts)
    session_offsets = np.concatenate([[0], np.cumsum(sessions)])
    session_start = first[np.repeat(np.arange(n_users), sessions)] + rng.random(int(sessions.sum())) * np.repeat(
        span, sessions)
    session_of = session_offsets[owner] + np.floor(rng.random(total) * sessions[owner]).astype(np.int64)
    per_session = counts[owner] / sessions[owner]
    pace = rng.lognormal(np.log(3.0), 1.0, n_users)  # seconds per rating in a sitting: many share a second
    times = session_start[session_of] + rng.random(total) * per_session * pace[owner]
    epoch_edges = np.linspace(LOG_START, LOG_END, spec.epochs + 1)
    epoch = np.clip(np.searchsorted(epoch_edges, times, side="right") - 1, 0, spec.epochs - 1)
    # items: cluster by the member's mix, then a title by that cluster's weights in that epoch; no repeats.
    # A heavy rater runs out of popular titles: repeats are drawn again, and after 16 rounds uniformly from the
    # titles released by then (heavy raters do reach the long tail); a rating never precedes its title.
    items = np.full(total, -1, dtype=np.int64)
    todo = np.arange(total)
    for round_ in range(24):
        if round_ < 16:
            cluster = np.minimum((mix_cdf[owner[todo]] < rng.random(len(todo))[:, None]).sum(axis=1),
                                 spec.clusters - 1)
            key = cluster * spec.epochs + epoch[todo]
            draws = rng.random(len(todo)).astype(np.float32)
            order = np.argsort(key, kind="stable")
            for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
                c, e = divmod(int(key[group[0]]), spec.epochs)
                items[todo[group]] = np.minimum(np.searchsorted(cat.cdf[c, e], draws[group]), spec.items - 1)
        else:  # a title released by then, uniformly (last rounds: any title, the rating moving to its release)
            when = times[todo] if round_ < 20 else np.full(len(todo), float(LOG_END))
            released = np.searchsorted(cat.release[cat.by_release], when, side="right")
            pick = np.floor(rng.random(len(todo)) * np.maximum(released, 1)).astype(np.int64)
            items[todo] = cat.by_release[np.minimum(pick, spec.items - 1)]
        _, first_seen = np.unique(owner * spec.items + items, return_index=True)
        keep = np.zeros(total, dtype=bool)
        keep[first_seen] = True
        todo = np.flatnonzero(~keep)
        items[todo] = -1
        if not len(todo):
            break
    ok = items >= 0
    owner, items, times = owner[ok], items[ok], times[ok]
    # a member starts with well-known titles (as MovieLens' sign-up asks) and reaches the tail later: the
    # member's times, in order, go to the titles in order of popularity plus noise
    key = cat.log_popularity[items] + rng.normal(0.0, spec.order_noise, len(items))
    by_time = np.lexsort((times, owner))
    by_fame = np.lexsort((-key, owner))
    ordered = np.empty_like(times)
    ordered[by_fame] = times[by_time]
    times = np.maximum(ordered, cat.release[items] + 3_600).astype(np.int64)  # never before the release
    # ratings: bias + quality + taste + noise; half stars for the members who use them
    bias = rng.normal(0.0, 0.4, n_users)
    halves = rng.random(n_users) < spec.half_star_users
    member_cluster = np.argmax(mix, axis=1)
    taste = cat.affinity[member_cluster[owner], items]
    value = (spec.rating_intercept + bias[owner] + cat.quality[items] + 0.35 * taste
             + rng.normal(0.0, spec.rating_noise, len(items)))
    step = np.where(halves[owner], 0.5, 1.0)
    value = np.clip(np.round(value / step) * step, step, 5.0)
    # MovieLens order: by member, then movie id
    order = np.lexsort((items, owner))
    return owner[order] + first_user + 1, items[order] + 1, value[order], times[order]


def generate(spec: SynthSpec) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The ratings, a chunk of members at a time: (userId, movieId, rating, timestamp) arrays."""
    rng = np.random.default_rng(spec.seed)
    cat = _catalogue(spec, rng)
    counts = _activity(spec, rng)
    for start in range(0, spec.users, spec.chunk_users):
        chunk_rng = np.random.default_rng([spec.seed, start])  # a chunk's draws do not depend on the chunk size before it
        yield _member_chunk(spec, cat, chunk_rng, start, counts[start:start + spec.chunk_users])


def write_dataset(spec: SynthSpec, out: Path | str, *, progress: bool = False) -> dict[str, Any]:
    """Write ``ratings.csv``, ``movies.csv``, ``links.csv`` and ``SYNTHETIC.md`` into ``out``; return a summary."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    cat = _catalogue(spec, rng)
    names = list(GENRES)
    movie_ids = np.arange(1, spec.items + 1)
    movies = pa.table({
        "movieId": movie_ids,
        "title": [f"Synthetic Film {i} ({y})" for i, y in zip(movie_ids.tolist(), cat.year.tolist(), strict=True)],
        "genres": ["|".join(names[g] for g in gs) for gs in cat.genres],
    })
    _write_csv(folder / "movies.csv", movies)
    _write_csv(folder / "links.csv", pa.table({"movieId": movie_ids, "imdbId": pa.nulls(spec.items, pa.int64()),
                                               "tmdbId": pa.nulls(spec.items, pa.int64())}))
    schema = pa.schema([("userId", pa.int64()), ("movieId", pa.int64()), ("rating", pa.float64()),
                        ("timestamp", pa.int64())])
    written = 0
    tmp = folder / "ratings.csv.part"
    with open(tmp, "wb") as sink, pacsv.CSVWriter(
            sink, schema, write_options=pacsv.WriteOptions(include_header=False)) as writer:
        sink.write((",".join(schema.names) + "\n").encode())
        for users, items, values, times in generate(spec):
            writer.write_table(pa.table([users, items, values, times], schema=schema))
            written += len(users)
            if progress:
                rate = written / max(time.perf_counter() - started, 1e-9)
                print(f"\r{written:,} / ~{spec.ratings:,} ratings ({rate:,.0f}/s)", end="", flush=True)
    tmp.replace(folder / "ratings.csv")  # a reader never sees half a file
    if progress:
        print()
    seconds = time.perf_counter() - started
    summary = {"spec": asdict(spec), "ratings_written": written, "seconds": round(seconds, 2),
               "ratings_per_second": round(written / max(seconds, 1e-9))}
    (folder / "SYNTHETIC.md").write_text(
        "# A synthetic MovieLens-layout dataset\n\n"
        f"Generated by `python -m ml_core synth --users {spec.users} --items {spec.items} --ratings {spec.ratings} "
        f"--seed {spec.seed}` (ml_core/synth.py): {written:,} ratings in {seconds:.1f} s. Not real people's ratings; "
        "titles are placeholders and links.csv has no TMDB or IMDb ids.\n")
    return summary


def _write_csv(path: Path, table: Any) -> None:
    """A CSV with MovieLens' plain header (pyarrow quotes header names; MovieLens readers match them bare)."""
    import pyarrow.csv as pacsv

    with open(path, "wb") as sink:
        sink.write((",".join(table.schema.names) + "\n").encode())
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))


def spec_for(*, scale: str | None, users: int | None, items: int | None, ratings: int | None,
             seed: int = 0) -> SynthSpec:
    """A spec from a ``--scale`` preset, overridden by any explicit size."""
    base = SCALES[scale] if scale else (None, None, None)
    sizes = [explicit if explicit is not None else preset for explicit, preset in zip((users, items, ratings), base,
                                                                                      strict=True)]
    if any(s is None for s in sizes):
        raise ValueError("give --scale or all of --users, --items and --ratings")
    u, i, r = (int(s) for s in sizes if s is not None)
    return SynthSpec(users=u, items=i, ratings=r, seed=seed)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 equal, 1 all on one)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    if x.sum() <= 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def shape_profile(users: np.ndarray, items: np.ndarray, ratings: np.ndarray | None,
                  times: np.ndarray | None) -> dict[str, float]:
    """The shape statistics a synthetic log is compared on (any interaction log)."""
    _, user_counts = np.unique(users, return_counts=True)
    _, item_counts = np.unique(items, return_counts=True)
    ranked = np.sort(item_counts)[::-1]
    top = max(1, len(ranked) // 100)
    head = ranked[: max(10, len(ranked) // 10)]
    slope = float(np.polyfit(np.log(np.arange(1, len(head) + 1)), np.log(head), 1)[0]) if len(head) > 2 else math.nan
    profile = {
        "users": float(len(user_counts)), "items": float(len(item_counts)), "ratings": float(len(users)),
        "density": float(len(users) / (len(user_counts) * len(item_counts))),
        "item_gini": gini(item_counts), "top1pct_item_share": float(ranked[:top].sum() / ranked.sum()),
        "zipf_slope_head": slope,
        "user_median": float(np.median(user_counts)), "user_mean": float(user_counts.mean()),
        "user_log_sd": float(np.log(user_counts).std()), "user_gini": gini(user_counts),
    }
    if ratings is not None:
        r = np.asarray(ratings, dtype=np.float64)
        profile.update(rating_mean=float(r.mean()), rating_sd=float(r.std()),
                       half_star_share=float(np.mean(np.abs(r - np.round(r)) > 1e-9)))
    if times is not None:
        order = np.lexsort((np.asarray(times), np.asarray(users)))
        u, t = np.asarray(users)[order], np.asarray(times)[order]
        same = u[1:] == u[:-1]
        gap = (t[1:] - t[:-1])[same]
        profile.update(same_second_share=float(np.mean(gap == 0)), within_hour_share=float(np.mean(gap <= 3_600)),
                       span_days_median=float(np.median(_spans(u, t)) / 86_400))
    return profile


def _spans(users: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each user's last minus first time (users sorted together)."""
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)] - 1
    return np.asarray(times[ends] - times[starts], dtype=np.float64)


def add_synth_arguments(parser: Any) -> None:
    """``python -m ml_core synth`` options."""
    parser.add_argument("--scale", choices=sorted(SCALES), default=None,
                        help="MovieLens sizes: " + ", ".join(f"{k} ({u:,} users, {i:,} movies, {r:,} ratings)"
                                                            for k, (u, i, r) in SCALES.items()))
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--ratings", type=int, default=None, help="about this many ratings (a member's repeats "
                                                                   "that find no new title are dropped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the folder to write (MovieLens layout)")
    parser.add_argument("--no-progress", action="store_true")


def run_synth(args: Any) -> int:
    """Write the dataset; a clear error (exit 2) for sizes that cannot be generated."""
    import json
    import sys

    try:
        spec = spec_for(scale=args.scale, users=args.users, items=args.items, ratings=args.ratings, seed=args.seed)
    except ValueError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    summary = write_dataset(spec, args.out, progress=not args.no_progress)
    print(json.dumps({k: v for k, v in summary.items() if k != "spec"}))
    return 0
