"""The nightly fairness report on the site's ratings: groups from imported ml-100k members, "no groups" without
them, the beat entry, and the read-only admin page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from catalog.models import Rating
from recommendations.fairness import fairness_report_latest
from recommendations.models import FairnessReport
from tests.factories import MovieFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2024, 1, 1, tzinfo=UTC)


def _site_ratings(*, ml100k_members: int, web_members: int) -> None:
    """60 movies (1-30 Drama, 31-60 Action); members 'ml-100k-<n>' (odd n: Drama fans) and web sign-ups rate 6."""
    rng = np.random.default_rng(5)
    movies = [MovieFactory(id=i, genres=["Drama" if i <= 30 else "Action"]) for i in range(1, 61)]
    names = [f"ml-100k-{n}" for n in range(1, ml100k_members + 1)] + [f"web{n}" for n in range(web_members)]
    rows = []
    for number, name in enumerate(names):
        user = UserFactory(username=name)
        pool = range(0, 30) if number % 2 == 0 else range(30, 60)
        for j, m in enumerate(rng.choice(list(pool), size=6, replace=False).tolist()):
            rows.append(Rating(user=user, movie=movies[m], value=float(rng.integers(3, 6)), source="ml-100k",
                               rated_at=START + timedelta(hours=j, minutes=number)))
    Rating.objects.bulk_create(rows)


@pytest.fixture
def demographics(tmp_path: Path, settings) -> Path:  # noqa: ANN001
    """u.user for ml-100k members 1-24: odd ids women aged 22, even ids men aged 40; occupations alternate."""
    path = tmp_path / "u.user"
    path.write_text("".join(f"{n}|{22 if n % 2 else 40}|{'F' if n % 2 else 'M'}|{'student' if n % 4 < 2 else 'writer'}"
                            f"|0{n:04d}\n" for n in range(1, 25)), encoding="latin-1")
    settings.APEX_DEMOGRAPHICS_FILE = str(path)
    settings.ML_ARTIFACTS_DIR = tmp_path / "artifacts"  # no trained ensemble or bundle: EASE is fitted
    return path


def test_nightly_task_stores_a_report_per_member_group(demographics: Path) -> None:
    from recommendations.tasks import run_fairness_report

    _site_ratings(ml100k_members=24, web_members=4)
    assert run_fairness_report.delay().get() == "ok"
    row = fairness_report_latest()
    assert row is not None and row.status == FairnessReport.Status.OK
    assert (row.dataset, row.n_users, row.n_interactions, row.model_source) == ("site", 28, 168, "ease")
    gender = row.report["attributes"]["gender"]
    assert [(g["group"], g["n_users"]) for g in gender["groups"]] == [("F", 12), ("M", 12)]
    assert gender["n_unknown"] == 4  # the web sign-ups: no demographics, in no group
    assert [g["group"] for g in row.report["attributes"]["age"]["groups"]] == ["18-24", "35-44"]
    assert {g["group"] for g in row.report["attributes"]["occupation"]["groups"]} == {"student", "writer"}
    for group in gender["groups"]:  # each half rates one genre only: its lists follow its history's genres
        assert group["before"]["kl_genre_history"] < 0.05 < group["before"]["kl_genre_catalogue"]
    assert 0.0 <= row.overall("after")["ndcg@10"] <= 1.0


def test_without_known_demographics_the_nightly_records_no_groups(demographics: Path) -> None:
    from recommendations.tasks import run_fairness_report

    _site_ratings(ml100k_members=0, web_members=6)
    assert run_fairness_report.delay().get() == "no_groups"
    row = fairness_report_latest()
    assert row is not None and row.status == FairnessReport.Status.NO_GROUPS and row.report == {}
    assert "None of the 6 members with ratings has known demographics" in row.message


def test_an_empty_site_records_no_groups(demographics: Path) -> None:
    from recommendations.fairness import fairness_report_run

    row = fairness_report_run()
    assert row.status == FairnessReport.Status.NO_GROUPS and "No ratings yet" in row.message


def test_the_report_runs_nightly_from_beat(settings) -> None:  # noqa: ANN001
    from apex_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["nightly-fairness"]
    assert entry["task"] == "recommendations.tasks.run_fairness_report"
    assert entry["task"] in app.tasks
    assert entry["schedule"].hour == {settings.FAIRNESS_HOUR_UTC}


def test_admin_shows_the_stored_report_read_only(client, django_user_model, demographics: Path) -> None:  # noqa: ANN001
    from recommendations.fairness import fairness_report_run

    _site_ratings(ml100k_members=24, web_members=0)
    row = fairness_report_run()
    client.force_login(django_user_model.objects.create_superuser("operator", "operator@example.com", "x"))
    listing = client.get("/admin/recommendations/fairnessreport/?status__exact=ok").content.decode()
    assert f"{row.overall('before')['ndcg@10']:.4f}" in listing and "ease" in listing
    page = client.get(f"/admin/recommendations/fairnessreport/{row.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "By gender" in html and "By occupation" in html and "<td>student †</td>" in html  # 12 < 20 members
    female = row.report["attributes"]["gender"]["groups"][0]
    assert f"<td>{female['before']['ndcg@10']:.4f}" in html
    assert client.get("/admin/recommendations/fairnessreport/add/").status_code == 403
    assert client.post(f"/admin/recommendations/fairnessreport/{row.pk}/delete/").status_code == 403
    assert FairnessReport.objects.count() == 1
