"""Recommendation analytics: Laplace noise of the right scale, a per-analyst ε budget that is enforced."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from events.models import Event, PrivacyBudget, PrivacyBudgetLedger
from events.privacy import genre_sensitivity, laplace_release, true_counts
from events.services import event_record
from tests.factories import MovieFactory

pytestmark = pytest.mark.django_db
URL = "/v1/events/recommendation-analytics"


@pytest.fixture
def interactions(alice, bob, movies):  # noqa: ANN001, ANN201
    for i, movie in enumerate(movies):
        event_record(user=alice, movie=movie, kind="click", idempotency_key=f"a{i}")
    event_record(user=bob, movie=movies[4], kind="rating", value=4.0, idempotency_key="b")
    event_record(user=bob, movie=movies[4], kind="impression", propensity=0.2, idempotency_key="imp")
    return Event.objects.count()


@pytest.mark.parametrize(("sensitivity", "epsilon"), [(1.0, 0.1), (1.0, 1.0), (3.0, 0.5)])
def test_noise_is_laplace_with_scale_sensitivity_over_epsilon(sensitivity, epsilon):
    rng = np.random.default_rng(20261126)
    counts = {str(i): 100.0 for i in range(50)}
    noise = np.array([v - 100.0 for _ in range(400)
                      for v in laplace_release(counts, sensitivity=sensitivity, epsilon=epsilon, rng=rng).values()])
    scale = sensitivity / epsilon
    assert abs(np.mean(np.abs(noise)) / scale - 1) < 0.03  # E|X| = b; 20,000 draws -> 0.7% standard error
    assert abs(np.std(noise) / (np.sqrt(2) * scale) - 1) < 0.03  # sd = b * sqrt(2)
    assert abs(np.median(noise)) < 0.05 * scale
    assert stats.kstest(noise, stats.laplace(scale=scale).cdf).pvalue > 0.001


def test_genre_sensitivity_is_the_most_genres_one_movie_has(movies):
    assert genre_sensitivity() == 3.0  # movies[4] is Drama, Crime and Thriller


def test_exact_counts_cover_every_bucket_and_skip_impressions(interactions, movies):
    hours, sensitivity = true_counts(dimension="hour")
    assert len(hours) == 24 and sum(hours.values()) == 6 and sensitivity == 1.0
    genres, _ = true_counts(dimension="genre")
    assert genres["Drama"] == 3 and genres["Sci-Fi"] == 2 and genres["Crime"] == 2
    demographic, _ = true_counts(dimension="demographic")
    assert demographic["unknown"] == 6 and "F 25-34" in demographic


def test_api_answers_with_noise_of_the_advertised_scale(client, staff, interactions, settings):
    settings.PRIVACY_EPSILON_BUDGET = 1e6
    client.force_login(staff)
    exact, _ = true_counts(dimension="hour")
    errors = []
    for _ in range(100):
        body = client.get(URL, {"dimension": "hour", "epsilon": 0.5}).json()
        assert body["noise_scale"] == 2.0 and body["mechanism"] == "laplace"
        errors += [body["counts"][h] - exact[h] for h in exact]
    # 2,400 draws of Laplace(0, 2): mean |error| = 2 with a 2% standard error (values are rounded to 0.01)
    assert abs(np.mean(np.abs(errors)) / 2.0 - 1) < 0.1


def test_the_budget_is_spent_per_query_and_refused_past_the_limit(client, staff, interactions, settings):
    settings.PRIVACY_EPSILON_BUDGET = 1.0
    client.force_login(staff)
    first = client.get(URL, {"dimension": "genre", "epsilon": 0.6})
    assert first.status_code == 200
    assert first.json()["budget"]["remaining_epsilon"] == pytest.approx(0.4)
    assert first.json()["sensitivity"] == 3.0 and first.json()["noise_scale"] == pytest.approx(5.0)
    refused = client.get(URL, {"dimension": "hour", "epsilon": 0.5})
    assert refused.status_code == 403
    assert "Privacy budget exhausted" in refused.json()["detail"] and "0.400" in refused.json()["detail"]
    assert client.get(URL, {"dimension": "hour", "epsilon": 0.4}).status_code == 200
    assert client.get(URL, {"dimension": "hour", "epsilon": 0.01}).status_code == 403
    budget = PrivacyBudget.objects.get(analyst=f"user:{staff.pk}")
    assert budget.spent_epsilon == pytest.approx(1.0)
    assert list(PrivacyBudgetLedger.objects.filter(budget=budget).order_by("id")
                .values_list("epsilon", "refused")) == [(0.6, False), (0.5, True), (0.4, False), (0.01, True)]


def test_all_keys_of_a_member_share_one_budget(client, alice, staff, interactions, settings):
    from accounts.services import api_key_create
    from tests.factories import IssuedApiKey

    settings.PRIVACY_EPSILON_BUDGET = 1.0
    keys = [IssuedApiKey(*api_key_create(user=alice, name=f"app {i}")) for i in range(3)]
    codes = [client.get(URL, {"epsilon": 0.5}, **key.headers).status_code for key in keys]
    assert codes == [200, 200, 403]  # three keys, still one member's 1.0 ε
    client.force_login(staff)
    assert client.get(URL, {"epsilon": 0.5}).status_code == 200  # another member: another budget
    assert {b.analyst: b.spent_epsilon for b in PrivacyBudget.objects.all()} == {
        f"user:{alice.pk}": pytest.approx(1.0), f"user:{staff.pk}": pytest.approx(0.5)}


def test_epsilon_spent_through_per_key_budgets_is_carried_into_the_members(client, api_key_for_alice, interactions,
                                                                          settings):
    settings.PRIVACY_EPSILON_BUDGET = 1.0
    PrivacyBudget.objects.create(analyst=f"key:{api_key_for_alice.key.pk}", budget_epsilon=1.0, spent_epsilon=0.8)
    assert client.get(URL, {"epsilon": 0.5}, **api_key_for_alice.headers).status_code == 403
    assert client.get(URL, {"epsilon": 0.2}, **api_key_for_alice.headers).status_code == 200


def test_people_who_are_not_analysts_are_refused(client, alice):
    client.force_login(alice)
    response = client.get(URL)
    assert response.status_code == 403 and "staff analysts and API keys" in response.json()["detail"]
    assert client.logout() is None and client.get(URL).status_code == 401


def test_bad_parameters_are_400_per_field(client, staff):
    client.force_login(staff)
    response = client.get(URL, {"dimension": "zip", "epsilon": 50})
    assert response.status_code == 400 and set(response.json()) == {"dimension", "epsilon"}


def test_known_ml100k_demographics_are_bucketed(tmp_path, settings, movies):
    from tests.factories import UserFactory

    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    settings.APEX_DEMOGRAPHICS_FILE = str(tmp_path / "u.user")
    for source_id in (1, 2):
        user = UserFactory(username=f"ml-100k-{source_id}")
        event_record(user=user, movie=MovieFactory(), kind="click", idempotency_key="k")
    counts, _ = true_counts(dimension="demographic")
    assert (counts["M 18-24"], counts["F 50-55"], counts["unknown"]) == (1, 1, 0)
