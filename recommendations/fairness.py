"""The nightly demographic fairness report on the site's own ratings, stored for admin.

The members are grouped by what is known of them: imported ml-100k members carry the age band, gender and
occupation of MovieLens's ``u.user`` (``events.demographics``; people who signed up here are not asked, so they are
in no group). The report itself is ``ml_core``'s (``python -m ml_core fairness`` computes the same on a dataset):
the site's ratings are split chronologically leave-one-out, ranked by the ensemble when one was trained on exactly
these ratings, else by EASE fitted here (or popularity past EASE's item budget), and every group's NDCG@10/HR@10,
exposure Gini and genre/popularity KL are measured before and after the re-ranker. Each run leaves one
:class:`FairnessReport` row: the report, "no groups" when no member with ratings has known demographics, or the
error.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings

from catalog.selectors import movie_metadata_map, ratings_as_arrays
from events.demographics import demographic_attributes

from .models import FairnessReport

log = logging.getLogger(__name__)

KEEP_REPORTS = 60  # rows kept (two months of nights); older ones are deleted after each run
STAGES = ("before", "after")


def fairness_report_run() -> FairnessReport:
    """Compute the report on every rating the site holds and store it (status ok / no_groups / failed)."""
    from ml_core.builds import NoGroupsError, attach_user_attributes, fairness_report, interactions_from_arrays

    from .serving import serving_dir

    start = time.perf_counter()
    users, movies, times, values = ratings_as_arrays()
    if not len(users):
        return _store(FairnessReport.Status.NO_GROUPS, start, message="No ratings yet, so no members to group.")
    data = interactions_from_arrays(users, movies, times, values, name="site")
    metadata = movie_metadata_map()
    for index, movie_id in enumerate(data.item_vocab.raw_ids.tolist()):
        meta = metadata.get(int(movie_id)) or {}
        data.item_genres[index] = list(meta.get("genres") or [])
        if meta.get("year"):
            data.item_years[index] = int(meta["year"])
    attach_user_attributes(data, demographic_attributes(user_ids=data.user_vocab.to_json()))
    try:
        report = fairness_report(data, artifacts_dir=Path(settings.ML_ARTIFACTS_DIR), bundle_dir=serving_dir())
    except NoGroupsError:
        return _store(FairnessReport.Status.NO_GROUPS, start, n_interactions=len(data), message=(
            f"None of the {data.n_users} members with ratings has known demographics (age, gender or occupation); "
            "only imported ml-100k members do, from its u.user (APEX_DEMOGRAPHICS_FILE). No groups to compare."))
    except Exception as exc:
        _store(FairnessReport.Status.FAILED, start, n_interactions=len(data),
               message="".join(traceback.format_exception(exc))[-8000:])
        raise
    return _store(FairnessReport.Status.OK, start, report=report, n_users=report["n_users"],
                  n_interactions=len(data), model_source=report["model"]["source"])


def _store(status: str, start: float, **fields: Any) -> FairnessReport:
    row = FairnessReport.objects.create(status=status, seconds=round(time.perf_counter() - start, 2), **fields)
    stale = FairnessReport.objects.order_by("-created_at", "-id").values_list("id", flat=True)[KEEP_REPORTS:]
    FairnessReport.objects.filter(id__in=list(stale)).delete()
    log.info("fairness report %s (%s) in %.1f s", row.pk, status, row.seconds)
    return row


def fairness_report_latest() -> FairnessReport | None:
    """The newest stored report row of any status, or None."""
    return FairnessReport.objects.order_by("-created_at", "-id").first()


def fairness_group_rows(report: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """Per attribute, one row of display strings per group: users, NDCG@k and HR@k with intervals, exposure Gini and
    the KLs against the group's own history, each before → after re-ranking (admin renders them)."""
    k = report.get("k", 10)
    out = []
    for attribute, entry in (report.get("attributes") or {}).items():
        rows = []
        for group in entry.get("groups", []):
            before, after = group["before"], group["after"]
            rows.append([group["group"] + (" †" if group.get("small") else ""), str(group["n_users"]),
                         _with_ci(before, f"ndcg@{k}"), _with_ci(after, f"ndcg@{k}"), _with_ci(before, f"hr@{k}"),
                         _with_ci(after, f"hr@{k}"),
                         *(f"{before[key]:.3f} → {after[key]:.3f}"
                           for key in ("gini_exposure", "kl_genre_history", "kl_popularity_history"))])
        out.append((attribute, rows))
    return out


def _with_ci(metrics: dict[str, Any], key: str) -> str:
    lo, hi = metrics.get(f"{key}_ci") or (None, None)
    return f"{metrics[key]:.4f}" + ("" if lo is None else f" [{lo:.3f}, {hi:.3f}]")
