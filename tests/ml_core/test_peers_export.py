"""benchmarks/peers.py: the exported split round-trips, and APEX's evaluator ranks a peer's output correctly."""

import math

import numpy as np
import pytest

from benchmarks.peers import ScoreTable, export_split, metrics, read_split_files, scores_from_top_k, train_only_input
from ml_core.data import interactions_from_arrays
from ml_core.evaluation import evaluate, leave_one_out


@pytest.fixture
def split():
    rng = np.random.default_rng(3)
    users, items, times = [], [], []
    for u in range(12):
        n = 2 if u == 5 else int(rng.integers(4, 9))  # user 5 is too short for a target: train only
        chosen = rng.choice(np.arange(100, 130), size=n, replace=False)
        stamps = np.sort(rng.integers(0, 6, size=n))  # few distinct times: many ties
        users += [1000 + u] * n
        items += chosen.tolist()
        times += stamps.tolist()
    data = interactions_from_arrays(np.array(users), np.array(items), np.array(times), name="peers-test")
    return leave_one_out(data, seed=0)


def test_exported_split_reads_back_to_the_same_targets_and_inputs(split, tmp_path):
    files = read_split_files(export_split(split, tmp_path))

    assert files["meta"]["n_items"] == split.n_items
    np.testing.assert_array_equal(files["valid_item"], split.valid_item)
    np.testing.assert_array_equal(files["test_item"], split.test_item)
    assert files["valid_item"][5] == -1 and files["test_item"][5] == -1
    for u, seq in enumerate(split.train_seqs):
        np.testing.assert_array_equal(files["train_seqs"][u], seq)  # the chronological order, ties included
    for stage in ("valid", "test"):
        users = split.eval_users(stage)
        for ctx in split.contexts(stage, users):
            from_files = list(files["train_seqs"][ctx.user])
            if stage == "test":
                from_files.append(files["valid_item"][ctx.user])
            assert from_files == list(ctx.history)  # what the evaluator excludes and what the model may see


def test_evaluator_ranks_a_known_top_k_list(split):
    users = split.eval_users("test")
    u, v = int(users[0]), int(users[1])
    seen = [int(i) for i in split.contexts("test", np.array([u]))[0].history]
    others = [i for i in range(split.n_items) if i not in seen and i != split.test_item[u]]
    tops = [[] for _ in range(len(split.train_seqs))]
    # user u: an already-seen item first (the evaluator drops it), two unseen items, then the target
    tops[u] = [seen[0], others[0], others[1], int(split.test_item[u]), others[2]]
    tops[v] = [i for i in range(split.n_items) if i != split.test_item[v]][:10]  # target missing from the list

    result = metrics(scores_from_top_k(tops, split.n_items), split, "test")

    per_user = len(users)
    assert result["n_users"] == per_user
    assert result["hr@10"] == pytest.approx(round(1 / per_user, 5))  # only u hits; everyone else ranks last
    assert result["ndcg@10"] == pytest.approx(round((1 / math.log2(3 + 1)) / per_user, 5), abs=1e-5)  # rank 3


def test_train_only_input_drops_the_validation_item_but_keeps_the_candidates(split):
    users = split.eval_users("test")
    plain = split.contexts("test", users)
    cut = train_only_input(split).contexts("test", users)

    for a, b in zip(plain, cut, strict=True):
        assert list(b.history) == list(split.train_seqs[a.user])
        assert list(a.history) == [*b.history, split.valid_item[a.user]]
    rng = np.random.default_rng(0)
    scores = ScoreTable(rng.random((len(split.train_seqs), split.n_items)))
    # the same scores rank the same way under either input: only the model's input differs, not the candidates
    assert evaluate(scores, split, "test", full_only=True) == evaluate(scores, train_only_input(split), "test",
                                                                       full_only=True)


@pytest.mark.slow
def test_recbole_ease_scores_arrive_in_apex_item_order(split, tmp_path):
    """The runner in the peers virtualenv maps RecBole's ids back: its EASE equals the closed form on our matrix."""
    import subprocess

    from benchmarks.peers import REPO, VENV

    if not (VENV / "bin" / "python").exists():
        pytest.skip("no peers virtualenv (benchmarks/peers.py creates var/peers-venv)")
    out = tmp_path / "run"
    subprocess.run([str(VENV / "bin" / "python"), str(REPO / "benchmarks" / "peers_runner.py"), "--split",
                    str(export_split(split, tmp_path / "split")), "--model", "EASE", "--params",
                    '{"reg_weight": 10.0}', "--out", str(out)], check=True, capture_output=True)
    x = split.train.matrix().toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 10.0 * np.eye(split.n_items))
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    expected = x @ b
    seen = x.sum(axis=0) > 0  # items only in validation/test have no column in RecBole's train matrix either
    got = np.load(out / "test_b.npy")
    np.testing.assert_allclose(got[:, seen], expected[:, seen], rtol=1e-3, atol=1e-4)
