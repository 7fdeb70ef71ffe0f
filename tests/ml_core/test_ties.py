"""Events with equal timestamps carry no order: a model that learns the id order must gain nothing from ties.

The log is built to leak, the way MovieLens' ratings.csv does: every user consumes items in pairs
(2p+1, 2p+2) whose two events share one timestamp, and the file lists rows by user, time, then item id.
With file order deciding ties, the held-out item of every tied user is the higher id, so "the item whose
id follows the last one" is always right. With the seeded tie-break key it is right about half the time,
exactly like its mirror image, and the split no longer depends on how the file is sorted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from ml_core import data as data_module
from ml_core.cli import main
from ml_core.data import Interactions, interactions_from_arrays
from ml_core.evaluation import Split, evaluate, leave_one_out
from ml_core.interface import UserContext

N_TIED_USERS = 400  # last pair (validation + test) shares one timestamp
N_UNTIED_USERS = 100  # last pair one hour apart, lower id first: a real order a model may use
N_PAIRS = 150
PAIRS_PER_USER = 4
CHANCE = 0.5  # a tied pair: either item is held out


def _rows(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, times), raw ids, sorted by user, time, item id (the leaky file order)."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(N_TIED_USERS + N_UNTIED_USERS):
        t0 = 1_000_000 + 10_000 * u
        for j, pair in enumerate(rng.choice(N_PAIRS, PAIRS_PER_USER, replace=False)):
            last_untied = u >= N_TIED_USERS and j == PAIRS_PER_USER - 1
            users += [u + 1, u + 1]
            items += [2 * pair + 1, 2 * pair + 2]
            times += [t0 + 1000 * j, t0 + 1000 * j + (3600 if last_untied else 0)]
    return np.array(users), np.array(items), np.array(times)


def _log(file_order: str = "by_id", name: str = "leaky") -> Interactions:
    """The same events written in another file order: ascending ids in ties, descending, or shuffled."""
    users, items, times = _rows()
    if file_order == "by_id":
        order = np.lexsort((items, times, users))
    elif file_order == "by_id_desc":
        order = np.lexsort((-items, times, users))
    else:
        order = np.random.default_rng(1).permutation(len(users))
    return interactions_from_arrays(users[order], items[order], times[order], name=name)


class IdStep:
    """Scores the item whose raw id is one step from the last history item's, in the direction learned.

    ``fit`` counts, over the training sequences, how often the next item's id is the previous id + 1 and
    how often it is - 1 (the order of tied pairs is all that decides this); ``step`` fixes the direction.
    """

    def __init__(self, split: Split, step: int | None = None) -> None:
        self.raw = split.full.item_vocab.raw_ids
        up = down = 0
        for seq in split.train_seqs:
            diff = np.diff(self.raw[seq])
            up, down = up + int((diff == 1).sum()), down + int((diff == -1).sum())
        self.up, self.down = up, down
        self.weights = {1: 1.0, -1: 0.0} if step == 1 else {-1: 1.0, 1: 0.0} if step == -1 else \
            {1: up / max(up + down, 1), -1: down / max(up + down, 1)}

    def score_batch(self, contexts: Sequence[UserContext]) -> np.ndarray:
        out = np.zeros((len(contexts), len(self.raw)), np.float32)
        for row, ctx in enumerate(contexts):
            last = self.raw[ctx.history[-1]]
            for step, weight in self.weights.items():
                idx = np.searchsorted(self.raw, last + step)
                if idx < len(self.raw) and self.raw[idx] == last + step:
                    out[row, idx] = weight
        return out


def _tied_test_users(split: Split) -> np.ndarray:
    """Users whose test event has the same timestamp as their validation event (computed from the data)."""
    users = split.eval_users("test")
    return users[split.test_time[users] == split.valid_time[users]]


def _hit_rate_at_1(model: IdStep, split: Split, users: np.ndarray) -> float:
    return evaluate(model, split, "test", users=users, full_only=True, k=1)["hr@1"]


def test_the_split_is_the_same_whatever_the_file_order():
    splits = [leave_one_out(_log(order), seed=0) for order in ("by_id", "by_id_desc", "shuffled")]
    first = splits[0]
    for other in splits[1:]:
        assert np.array_equal(other.test_item, first.test_item)
        assert np.array_equal(other.valid_item, first.valid_item)
        assert all(np.array_equal(a, b) for a, b in zip(other.train_seqs, first.train_seqs, strict=True))


def test_the_held_out_item_of_a_tie_is_the_higher_id_only_about_half_the_time():
    split = leave_one_out(_log("by_id"), seed=0)
    tied = _tied_test_users(split)
    assert len(tied) == N_TIED_USERS
    raw = split.full.item_vocab.raw_ids
    higher = float((raw[split.test_item[tied]] > raw[split.valid_item[tied]]).mean())
    assert abs(higher - CHANCE) < 0.1  # binomial SE 0.025 for 400 pairs; file order gives 1.0


@pytest.mark.parametrize("file_order", ["by_id", "by_id_desc"])
def test_a_model_that_exploits_the_id_order_gains_nothing_on_tied_users(file_order):
    split = leave_one_out(_log(file_order), seed=0)
    tied = _tied_test_users(split)
    up, down = IdStep(split, step=1), IdStep(split, step=-1)
    hr_up, hr_down = _hit_rate_at_1(up, split, tied), _hit_rate_at_1(down, split, tied)
    assert hr_up + hr_down == pytest.approx(1.0)  # exactly one neighbour of the validation item is held out
    assert hr_up <= CHANCE + 0.1 and hr_down <= CHANCE + 0.1  # with file order: 1.0 and 0.0 (or 0.0 and 1.0)


def test_a_model_that_learns_the_order_of_training_ties_gains_nothing():
    results = []
    for file_order in ("by_id", "by_id_desc", "shuffled"):
        split = leave_one_out(_log(file_order), seed=0)
        learned = IdStep(split)
        # training sequences hold 4 tied pairs per user: their order must not follow the ids
        assert learned.up == pytest.approx(learned.down, rel=0.15)
        results.append(_hit_rate_at_1(learned, split, _tied_test_users(split)))
    assert results[0] == results[1] == results[2]  # the same split whatever the file order
    assert results[0] <= CHANCE + 0.1


def test_a_real_order_is_kept_and_reported_apart_from_the_ties():
    split = leave_one_out(_log("by_id"), seed=0)
    m = evaluate(IdStep(split, step=1), split, "test", full_only=True, k=1)
    assert m["n_tied_users"] == N_TIED_USERS
    assert m["hr@1_untied"] == pytest.approx(1.0)  # one hour apart, lower id first: the order is real
    assert m["hr@1_tied"] <= CHANCE + 0.1
    assert m["hr@1"] == pytest.approx((N_UNTIED_USERS * 1.0 + N_TIED_USERS * m["hr@1_tied"])
                                      / (N_TIED_USERS + N_UNTIED_USERS))
    assert split.test_tied.sum() == N_TIED_USERS and not split.test_tied[split.eval_users("test")][-1]


def test_training_sequences_and_times_follow_the_split_order():
    data = _log("by_id")
    split = leave_one_out(data, seed=0)
    seqs, times = data.sequences(), data.time_sequences()
    for u in split.eval_users("test")[:50].tolist():
        assert seqs[u][-1] == split.test_item[u] and seqs[u][-2] == split.valid_item[u]
        assert np.array_equal(seqs[u][:-2], split.train_seqs[u])
        assert np.all(np.diff(times[u]) >= 0)


def test_the_tie_break_key_is_fixed_per_dataset_and_ignores_file_order():
    users, items, _ = _rows()
    tiebreak_keys = data_module.tiebreak_keys
    keys = tiebreak_keys("leaky", users, items)
    order = np.random.default_rng(2).permutation(len(users))
    assert np.array_equal(tiebreak_keys("leaky", users[order], items[order]), keys[order])
    assert not np.array_equal(tiebreak_keys("another", users, items), keys)
    a, b = leave_one_out(_log(name="leaky"), seed=0), leave_one_out(_log(name="another"), seed=0)
    assert not np.array_equal(a.test_item, b.test_item)  # another dataset, another coin per tie


def test_the_run_file_and_the_card_report_the_tied_users(tmp_path):
    users, items, times = _rows()
    order = np.lexsort((items, times, users))
    lines = ["user_id,item_id,timestamp"] + [f"{u},{i},{t}" for u, i, t in zip(users[order], items[order],
                                                                                 times[order], strict=True)]
    (tmp_path / "leaky.csv").write_text("\n".join(lines) + "\n")
    out, docs = tmp_path / "artifacts", tmp_path / "docs"
    assert main(["train", "--dataset", str(tmp_path / "leaky.csv"), "--models", "popularity", "--quick",
                 "--no-progress", "--out", str(out), "--docs", str(docs)]) == 0
    run = json.loads((out / "leaky" / "metrics.json").read_text())
    test = run["models"]["popularity"]["test"]
    assert run["protocol"]["n_tied_test_users"] == test["n_tied_users"] == N_TIED_USERS
    assert {"ndcg@10_untied", "hr@10_untied", "ndcg@10_tied", "hr@10_tied"} <= set(test)
    card = (docs / "MODEL_CARDS.md").read_text()
    assert f"Timestamp ties: {N_TIED_USERS} of {N_TIED_USERS + N_UNTIED_USERS} test users" in card
    assert f"without them ({N_UNTIED_USERS} users): NDCG@10 {test['ndcg@10_untied']:.4f}" in card
