"""The seed's boosts, MMR and the fairness auditor on hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from ml_core.rerank import BOOSTS, FairnessAuditor, ItemFacts, apply_boosts, gini, mmr

META = [  # 0 is the anchor
    {"title": "Alien", "year": 1979, "genres": ["Sci-Fi", "Horror"], "director": "Ridley Scott", "collection": "Alien"},
    {"title": "Aliens", "year": 1986, "genres": ["Sci-Fi", "Action"], "director": "James Cameron",
     "collection": "Alien"},
    {"title": "Blade Runner", "year": 1982, "genres": ["Sci-Fi"], "director": "Ridley Scott"},
    {"title": "Notting Hill", "year": 1999, "genres": ["Romance"], "director": "Roger Michell"},
    {"title": "The Godfather", "year": 1972, "genres": ["Drama"], "director": "Francis Ford Coppola",
     "vote_average": 8.7, "vote_count": 20000},
]


@pytest.fixture
def facts() -> ItemFacts:
    return ItemFacts.from_metadata(META, np.array([50.0, 40.0, 30.0, 20.0, 10.0]))


def test_boosts_follow_the_seed_on_relevance_scaled_to_unit_range(facts: ItemFacts) -> None:
    cands = np.array([1, 2, 3, 4])
    scores, applied = apply_boosts(np.array([1.0, 1.0, 1.0, 0.0]), cands, np.array([0]), facts)
    assert applied[0] == ["franchise"]  # Aliens: same franchise, 7 years apart, shares Sci-Fi
    assert scores[0] == pytest.approx(1.0 + BOOSTS["franchise"])
    assert set(applied[1]) == {"director", "era"}  # Blade Runner: Ridley Scott, 3 years apart
    assert scores[1] == pytest.approx(1.0 + 0.10 + 0.03)
    assert applied[2] == ["no_shared_genre"]
    assert scores[2] == pytest.approx(1.0 - 0.15)
    assert set(applied[3]) == {"quality", "no_shared_genre"}
    assert scores[3] == pytest.approx(0.0 + 0.02 - 0.15)


def test_mmr_with_lambda_one_is_plain_relevance_order() -> None:
    vecs = np.eye(4)
    assert mmr(np.array([0.1, 0.9, 0.5, 0.3]), vecs, 4, lam=1.0).tolist() == [1, 2, 3, 0]


def test_mmr_skips_a_near_duplicate_at_lambda_07() -> None:
    vecs = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    # by relevance: 0, 1, 2; but 1 nearly duplicates 0: 0.7*0.95 - 0.3*0.99 = 0.368 < 0.7*0.6 - 0 = 0.42
    assert mmr(np.array([1.0, 0.95, 0.6]), vecs, 2, lam=0.7).tolist() == [0, 2]


def test_gini_of_exposure() -> None:
    assert gini(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 4.0])) == pytest.approx(0.75)


def test_fairness_audit_reports_kl_per_list_and_aggregates(facts: ItemFacts) -> None:
    auditor = FairnessAuditor(facts)
    catalogue_like = auditor.audit(np.arange(5))
    assert catalogue_like["kl_genre_catalogue"] == pytest.approx(0.0, abs=1e-6)
    skewed = auditor.audit(np.array([0, 1]), profile=np.array([3]))
    assert skewed["kl_genre_catalogue"] > 0.3
    assert skewed["kl_genre_profile"] > skewed["kl_genre_catalogue"]
    summary = auditor.summary()
    assert summary["lists"] == 2
    assert summary["gini_exposure"] == pytest.approx(gini(np.array([2.0, 2.0, 1.0, 1.0, 1.0])))
