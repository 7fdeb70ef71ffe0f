"""benchmarks/serving_scale.py on the tiny bundle: what it reads from the bundle, the build report, one tier run
in a fresh process, and the recall of the bundle's index against exact search."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import serving_scale

TIME_REPORT = """\tCommand being timed: "python manage.py build_serving_artifacts --dataset var/synth-60k --quick"
\tUser time (seconds): 3301.52
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.50
\tMaximum resident set size (kbytes): 6291456
\tExit status: 0
"""


def test_the_build_report_of_usr_bin_time_is_read_and_a_wrong_file_is_named(tmp_path: Path) -> None:
    report = tmp_path / "build.time"
    report.write_text(TIME_REPORT)
    assert serving_scale.build_time(report) == {"wall_s": 3723.5, "peak_mb": 6144.0}
    assert serving_scale.build_time(tmp_path / "missing") is None
    (tmp_path / "other").write_text("real 1m2s\n")
    with pytest.raises(SystemExit, match="other: not a /usr/bin/time -v report"):
        serving_scale.build_time(tmp_path / "other")


def test_the_section_reports_the_bundle_a_tier_in_a_fresh_process_and_exact_recall(serving_bundle: Path,
                                                                                    tmp_path: Path) -> None:
    facts = serving_scale.bundle_facts(serving_bundle)
    assert facts["n_items"] == 40 and set(facts["models"]) == {"sasrec", "lightgcn", "ease", "diffusion"}
    assert all(m["epochs"] for m in facts["models"].values()) and facts["disk_mb"] > 0
    recall = serving_scale.retrieval_recall(serving_bundle, n_queries=20, k=10)
    assert recall["kind"] == "flat" and recall["recall"] == 1.0  # below HNSW_THRESHOLD the index is exact
    tier = serving_scale.in_process(serving_bundle, 3, 30)
    assert tier["tier"].startswith("tier3") and tier["rss_mb"] >= tier["anon_mb"] > 0
    text = serving_scale.render(facts, {"wall_s": 90.0, "peak_mb": 2048.0}, [tier], recall,
                                {"bundle": "B", "build_time": None, "when": "now", "machine": "m", "load": 0.5})
    assert "**40 movies**" in text and "1.5 min wall, peak 2.0 GB" in text
    assert "p50 <= 1 ms" in text and "recall@10 1.000" in text
