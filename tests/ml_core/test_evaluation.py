"""The evaluator on cases small enough to compute by hand."""

import math

import numpy as np
import pytest
from scipy import sparse

from ml_core.data import interactions_from_arrays
from ml_core.evaluation import beyond_accuracy, evaluate, leave_one_out, rank_metrics, ranks_full, ranks_sampled
from ml_core.interface import UserContext


def _no_exclusions(rows: int, cols: int) -> sparse.csr_matrix:
    return sparse.csr_matrix((rows, cols), dtype=bool)


def test_ranks_are_one_based():
    scores = np.array([[0.9, 0.5, 0.1]])
    assert ranks_full(scores, np.array([0]), _no_exclusions(1, 3)).tolist() == [1]
    assert ranks_full(scores, np.array([2]), _no_exclusions(1, 3)).tolist() == [3]


def test_ties_count_against_the_target():
    scores = np.array([[0.5, 0.5, 0.5, 0.1]])
    # two other items tie with the target: pessimistic rank 3, whichever tied item is the target
    assert ranks_full(scores, np.array([0]), _no_exclusions(1, 4)).tolist() == [3]
    assert ranks_full(scores, np.array([2]), _no_exclusions(1, 4)).tolist() == [3]


def test_constant_scores_rank_the_target_last():
    scores = np.zeros((1, 5))
    assert ranks_full(scores, np.array([1]), _no_exclusions(1, 5)).tolist() == [5]


def test_seen_items_are_excluded_but_never_the_target():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    excluded = sparse.csr_matrix(np.array([[True, True, False, True]]))
    # items 0 and 1 would outrank item 2 but were seen: rank 1
    assert ranks_full(scores, np.array([2]), excluded).tolist() == [1]
    # the target is listed as seen (a repeat) but is still ranked; items 0 and 1 are excluded, item 2 is above it
    assert ranks_full(scores, np.array([3]), excluded).tolist() == [2]


def test_nan_scores_rank_below_everything():
    scores = np.array([[np.nan, 0.2, 0.1], [0.3, np.nan, np.nan]])
    ranks = ranks_full(scores, np.array([2, 1]), _no_exclusions(2, 3))
    assert ranks.tolist() == [2, 3]  # NaN neighbour ignored; NaN target is last (ties with the other NaN)


def test_sampled_ranks_use_only_the_given_negatives():
    scores = np.array([[0.1, 0.9, 0.5, 0.3, 0.2]])
    negatives = np.array([[3, 4, -1]])  # -1 is padding
    assert ranks_sampled(scores, np.array([2]), negatives).tolist() == [1]
    assert ranks_sampled(scores, np.array([0]), negatives).tolist() == [3]


def test_metrics_match_hand_computation():
    m = rank_metrics(np.array([1, 2, 11, 4]), k=10)
    assert m["hr@10"] == pytest.approx(3 / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(5)) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 4)


def _tiny_log():
    # user 1: items 10, 20, 30, 40 (40 last); user 2: 20, 10, 30 (equal times: tests/ml_core/test_ties.py)
    users = [1, 1, 1, 1, 2, 2, 2]
    items = [10, 30, 20, 40, 20, 10, 30]
    times = [100, 300, 200, 400, 100, 200, 250]
    return interactions_from_arrays(np.array(users), np.array(items), np.array(times))


def test_leave_one_out_is_chronological():
    split = leave_one_out(_tiny_log(), seed=0)
    vocab = split.full.item_vocab
    raw = lambda idx: int(vocab.raw_ids[idx])  # noqa: E731
    assert [raw(i) for i in split.train_seqs[0]] == [10, 20]
    assert (raw(split.valid_item[0]), raw(split.test_item[0])) == (30, 40)
    assert [raw(i) for i in split.train_seqs[1]] == [20]
    assert (raw(split.valid_item[1]), raw(split.test_item[1])) == (10, 30)


def test_test_history_includes_the_validation_item():
    split = leave_one_out(_tiny_log(), seed=0)
    ctx = split.contexts("test", np.array([0]))[0]
    assert list(ctx.history) == list(split.train_seqs[0]) + [split.valid_item[0]]


class _FixedScores:
    """A fake model: the same fixed score vector for everyone."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float32)

    def score_batch(self, contexts: list[UserContext]) -> np.ndarray:
        return np.tile(self.scores, (len(contexts), 1))


def test_evaluate_excludes_history_before_the_target():
    split = leave_one_out(_tiny_log(), seed=0)  # items 10, 20, 30, 40 -> indices 0..3
    model = _FixedScores([4.0, 3.0, 2.0, 1.0])
    # user 0, test target 40 (idx 3): 10, 20 (train) and 30 (validation) are excluded -> rank 1
    # user 1, test target 30 (idx 2): 20 (train), 10 (validation) excluded; 40 scores lower -> rank 1
    assert evaluate(model, split, "test", full_only=True)["ndcg@10"] == pytest.approx(1.0)
    # validation: user 0 target 30 (idx 2) with 10, 20 excluded -> rank 1; user 1 target 10 (idx 0) -> rank 1
    valid = evaluate(model, split, "valid", k=1)
    assert valid["hr@1"] == pytest.approx(1.0)


def test_evaluate_ranks_against_unseen_items_only():
    split = leave_one_out(_tiny_log(), seed=0)
    model = _FixedScores([1.0, 2.0, 3.0, 4.0])  # prefers 40 > 30 > 20 > 10
    m = evaluate(model, split, "valid", full_only=True)
    # user 0 valid 30: unseen candidates 30, 40 -> rank 2; user 1 valid 10: candidates 10, 30, 40 -> rank 3
    assert m["mrr@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_beyond_accuracy_by_hand():
    data = interactions_from_arrays(np.array([1, 1, 2, 3]), np.array([1, 2, 1, 3]), np.arange(4))
    tops = np.array([[0, 1], [0, 1]])  # items 0 and 1 each shown twice, item 2 never
    m = beyond_accuracy(tops, data)
    assert m["coverage@10"] == pytest.approx(2 / 3)
    # exposure sorted [0, 2, 2]: gini = sum((2i - n - 1) x_i) / (n sum x) = (0 + 0*2 + 2*2) / (3*4)
    assert m["gini@10"] == pytest.approx(4 / 12)
    # item 0 seen by 2 of 3 users, item 1 by 1: -log2(3/4) and -log2(2/4)
    assert m["novelty@10"] == pytest.approx((-math.log2(3 / 4) - math.log2(2 / 4)) / 2)


def test_train_plus_valid_drops_only_the_test_rows():
    split = leave_one_out(_tiny_log(), seed=0)
    assert len(split.train_plus_valid()) == len(split.full) - 2
