"""Search quality on judged queries: nDCG@10 and recall@10 of keyword, semantic and hybrid search -> docs/SEARCH.md.

    .venv/bin/python benchmarks/search_quality.py [--judgments benchmarks/search_judgments.json]
                                                 [--work var/search_quality] [--out docs/SEARCH.md]
                                                 [--postgres postgres://.../db]

Loads the embedded catalogue (data/ml-latest-small and its shipped enrichment table, as `bin/setup` does) into a
SQLite database under --work (kept, so a rerun skips the import), builds the semantic index there with
`manage.py build_search_index` (its embedding cache is kept too: a rerun embeds nothing new), then asks
catalog.hybrid.movie_search every judged query in each mode with the product's defaults and a limit of 10.
The judgments and how they were written are in the judgments file. With --postgres the same is measured on that
PostgreSQL database too (in a child process; the catalogue is imported into it), in a second table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODES = ("keyword", "semantic", "hybrid")
K = 10
PAGE = 24  # the portal's page size: how many results each mode returns with its cut-off, out of at most 24


def ndcg_at_k(ranked: list[int], grades: dict[int, int], k: int = K) -> float:
    """Normalised discounted cumulative gain with gains 2^grade - 1."""
    dcg = sum((2 ** grades.get(item, 0) - 1) / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[int], grades: dict[int, int], k: int = K) -> float:
    """Relevant movies in the top k over the most that could be there (min(k, relevant))."""
    return len(set(ranked[:k]) & set(grades)) / min(k, len(grades)) if grades else 0.0


def _setup(work: Path, postgres: str = "") -> float:
    """Django on the work folder's SQLite database (or the given PostgreSQL one) with the embedded catalogue;
    returns the set-up seconds."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "apex_site.settings", "DEBUG": "true",
                       "SQLITE_PATH": str(work / "catalogue.sqlite3"), "ML_ARTIFACTS_DIR": str(work / "artifacts")})
    if postgres:
        os.environ.update({"DATABASE_URL": postgres, "SECRET_KEY": secrets.token_urlsafe(50)})
    import django

    django.setup()
    from django.core.management import call_command

    from catalog.models import Movie

    started = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    if not Movie.objects.filter(overview__gt="").exists():
        call_command("import_movielens", str(REPO / "data" / "ml-latest-small"), "--quiet")
        call_command("import_tmdb", "--path", str(work / "no-tmdb-dumps"), "--directors", str(work / "no-hetrec"),
                     "--quiet")  # the shipped enrichment table, as on a clone without ../shared
    return time.perf_counter() - started


def measure(judgments_path: Path, work: Path, postgres: str = "") -> dict[str, Any]:
    """Every judged query in every mode on the embedded catalogue (SQLite, or PostgreSQL when given)."""
    queries = json.loads(judgments_path.read_text())["queries"]
    import_s = _setup(work, postgres)
    from django.core.management import call_command

    from catalog import hybrid, semantic
    from catalog.models import Movie
    from catalog.selectors import movie_metadata_map

    texts = {text for meta in movie_metadata_map().values() for text in semantic.movie_fields(meta).values()}
    cache = semantic.index_dir() / semantic.CACHE_NAME
    cached = cache.exists()
    started = time.perf_counter()
    call_command("build_search_index", "--quiet")
    index_s = time.perf_counter() - started
    semantic.embed(["warm-up"])  # the model load is not a query's time

    rows: list[dict[str, Any]] = []
    for item in queries:
        grades = {int(k): int(v) for k, v in item["relevant"].items()}
        row: dict[str, Any] = {"query": item["query"], "type": item["type"], "relevant": len(grades)}
        for mode in MODES:
            begun = time.perf_counter()
            outcome = hybrid.movie_search(query=item["query"], mode=mode, limit=PAGE)
            row[f"{mode}_ms"] = (time.perf_counter() - begun) * 1000
            ranked = [hit.movie.id for hit in outcome.hits]
            row[f"{mode}_ndcg"] = ndcg_at_k(ranked, grades)
            row[f"{mode}_recall"] = recall_at_k(ranked, grades)
            row[f"{mode}_returned"] = len(ranked)
        prior = hybrid.POPULARITY_WEIGHT
        hybrid.POPULARITY_WEIGHT = 0.0  # ablation: the semantic ranking by cosine alone
        try:
            for mode in ("semantic", "hybrid"):
                outcome = hybrid.movie_search(query=item["query"], mode=mode, limit=PAGE)
                row[f"{mode}_noprior_ndcg"] = ndcg_at_k([hit.movie.id for hit in outcome.hits], grades)
        finally:
            hybrid.POPULARITY_WEIGHT = prior
        rows.append(row)
    from catalog.fuzzy import trigram_available

    return {"rows": rows, "import_s": import_s, "index_s": index_s, "texts": len(texts), "cached": cached,
            "movies": Movie.objects.count(), "with_overview": Movie.objects.exclude(overview="").count(),
            "manifest": semantic.load_index().manifest, "pg_trgm": trigram_available()}


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in rows) if rows else 0.0


def _ndcg_table(rows: list[dict[str, Any]]) -> list[str]:
    types = list(dict.fromkeys(r["type"] for r in rows))
    lines = ["| queries | n | keyword | semantic | hybrid |", "|---|---:|---:|---:|---:|"]
    for name, group in [("all", rows)] + [(t, [r for r in rows if r["type"] == t]) for t in types]:
        best = max(_mean(group, f"{m}_ndcg") for m in MODES)
        cells = []
        for mode in MODES:
            ndcg = _mean(group, f"{mode}_ndcg")
            text = f"{ndcg:.3f} ({_mean(group, f'{mode}_recall'):.2f})"
            cells.append(f"**{text}**" if math.isclose(ndcg, best) else text)
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def _markdown(result: dict[str, Any], judged: dict[str, Any], judgments_path: Path,
              postgres: dict[str, Any] | None = None) -> str:
    from catalog import hybrid, semantic

    rows = result["rows"]
    types = list(dict.fromkeys(r["type"] for r in rows))
    manifest = result["manifest"]
    counts = ", ".join(f"{sum(r['type'] == t for r in rows)} {t}" for t in types)
    lines = [
        "# Search quality",
        "",
        "Written by `.venv/bin/python benchmarks/search_quality.py" + (" --postgres URL" if postgres else "") + "` (do not edit by hand): every figure below comes "
        "from that run.",
        "",
        f"**Catalogue**: the embedded ml-latest-small with its shipped enrichment table ({result['movies']:,} movies, "
        f"{result['with_overview']:,} with an overview), in SQLite. **Queries**: {len(rows)} judged queries in "
        f"`{judgments_path.relative_to(REPO)}` ({counts}); "
        "how they were judged is written in that file. **Machine**: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()} (shared with other work, so "
        "the times are indicative).",
        "",
        "## nDCG@10 (recall@10)",
        "",
    ]
    lines += _ndcg_table(rows)
    lines += [
        "",
        "nDCG@10 uses gains 2^grade - 1 (grades 2 and 1 as judged); recall@10 counts the judged movies in the top 10 "
        "over the most that fit there, min(10, judged). Best of the three in bold.",
        "",
        *(["The same queries on PostgreSQL (full-text search for the keyword side, pg_trgm "
           + ("installed" if postgres["pg_trgm"] else "NOT installed") + " choosing the typo candidates; the "
           "catalogue imported the same way, `--postgres URL`):", "", *_ndcg_table(postgres["rows"]), ""]
          if postgres else []),
        f"Without the semantic side's popularity prior (weight {hybrid.POPULARITY_WEIGHT} x log(1 + ratings) / "
        "log(1 + the most ratings), added to the cosine of the neighbours kept), nDCG@10 over all queries is "
        f"{_mean(rows, 'semantic_noprior_ndcg'):.3f} for semantic and {_mean(rows, 'hybrid_noprior_ndcg'):.3f} for "
        "hybrid: the judged movies are the best-known matches (see the judgments), and among movies about as close "
        "in meaning the model alone cannot tell which ones people know.",
        "",
        f"## Results returned (limit {PAGE}, the portal's page) and time per query",
        "",
        "| | keyword | semantic | hybrid |",
        "|---|---:|---:|---:|",
        "| mean results | " + " | ".join(f"{_mean(rows, f'{m}_returned'):.1f}" for m in MODES) + " |",
        "| queries with fewer than the limit | " + " | ".join(
            str(sum(r[f"{m}_returned"] < PAGE for r in rows)) for m in MODES) + " |",
        "| median ms per query | " + " | ".join(
            f"{statistics.median(r[f'{m}_ms'] for r in rows):.0f}" for m in MODES) + " |",
        "",
        "Each mode cuts its ranking to the relevant part instead of always filling the page: keyword keeps every "
        "match of the query's words (PostgreSQL's full-text search needs all of them; the SQLite fallback keeps the "
        "hits scoring at least half the best) and the typo matches; semantic keeps neighbours with cosine "
        f"similarity at least {hybrid.SEMANTIC_FLOOR} and within {hybrid.SEMANTIC_MARGIN} of the best (of "
        f"{hybrid.SEMANTIC_CANDIDATES} nearest), ranked with the popularity prior; hybrid "
        f"fuses the two cut rankings by reciprocal rank fusion (k = {hybrid.RRF_K}).",
        "",
        "## How each mode works",
        "",
        "- **keyword**: PostgreSQL full-text search (title A, genres/director/keywords/tags B, overview C) or, on "
        "SQLite, a word-scoring fallback; then typo tolerance: titles whose words are within 1 edit (4 to 7 letters) "
        "or 2 (8 or more) of the query's, by optimal-string-alignment distance, with pg_trgm's word similarity "
        "choosing the candidate titles on PostgreSQL; a query with words no title has is rewritten to the best "
        "typo match's spelling and searched first.",
        f"- **semantic**: {manifest.get('model')} embeddings in a FAISS {manifest.get('index')}. A movie's vector "
        "is the normalised weighted sum of the embeddings of its fields, "
        + ", ".join(f"{name} {weight}" for name, weight in semantic.FIELD_WEIGHTS.items())
        + ": plot = tagline + overview; descriptors = genres, TMDB keywords and the most frequent MovieLens tags; "
        f"the title at a low weight: {result['texts']:,} distinct field texts. Index build in this run: "
        f"{result['index_s']:.0f} s"
        + (" (every embedding already in the cache from an earlier run: embeddings are cached by text digest, so "
           "a rebuild embeds only changed text)" if result["cached"] else " (embedding every text)") + ".",
        "- **hybrid** (the portal's and `/v1/search`'s default): reciprocal rank fusion of the two, each cut first; "
        "a query whose words were corrected on the keyword side is embedded as corrected.",
        "",
        "## Per query (nDCG@10)",
        "",
        "| type | query | judged | keyword | semantic | hybrid |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['type']} | {r['query']} | {r['relevant']} | " + " | ".join(
            f"{r[f'{m}_ndcg']:.2f}" for m in MODES) + " |")
    lines += ["", f"Judgments: {judged['method']}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=Path, default=REPO / "benchmarks" / "search_judgments.json")
    parser.add_argument("--work", type=Path, default=REPO / "var" / "search_quality",
                        help="database, index and embedding cache (kept between runs)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "SEARCH.md")
    parser.add_argument("--postgres", default="", metavar="URL",
                        help="also measure on this PostgreSQL database (the catalogue is imported into it)")
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # a child run's results, for --postgres
    args = parser.parse_args()
    judgments, work = args.judgments.resolve(), args.work.resolve()
    if args.json:  # the PostgreSQL child: measure, hand the rows back
        args.json.write_text(json.dumps(measure(judgments, work, args.postgres)))
        return
    postgres = None
    if args.postgres:
        handoff = work / "postgres.json"
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, "--judgments", str(judgments), "--work", str(work),
                        "--postgres", args.postgres, "--json", str(handoff)], check=True)
        postgres = json.loads(handoff.read_text())
    result = measure(judgments, work)
    args.out.resolve().write_text(_markdown(result, json.loads(judgments.read_text()), judgments, postgres))
    if postgres:
        print("postgres " + "  ".join(f"{m} {_mean(postgres['rows'], f'{m}_ndcg'):.3f}" for m in MODES))
    for mode in MODES:
        print(f"{mode:8s} nDCG@10 {_mean(result['rows'], f'{mode}_ndcg'):.3f}  "
              f"recall@10 {_mean(result['rows'], f'{mode}_recall'):.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
