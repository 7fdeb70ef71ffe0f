"""Shared torch helpers: membership of seen pairs, negative sampling and the next-item loss at any catalogue size."""

import numpy as np
import torch
import torch.nn.functional as F

from ml_core.models.layers import SeenItems, next_item_loss, sample_negatives, seen_matrix


def _log(seed=0, n_users=40, n_items=25):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, 300)
    items = rng.integers(0, n_items, 300)
    return users, items, n_users, n_items


def test_seen_items_answer_as_a_dense_mask_would():
    users, items, n_users, n_items = _log()
    dense = np.zeros((n_users, n_items), bool)
    dense[users, items] = True
    seen = SeenItems(users, items, n_users, n_items)
    uu, ii = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    np.testing.assert_array_equal(seen[uu, ii], dense)
    assert seen.keys.nbytes == 8 * len(np.unique(users * n_items + items))  # one key per distinct pair
    assert not SeenItems(np.zeros(0, np.int64), np.zeros(0, np.int64), 3, 4)[np.array([0]), np.array([1])].any()


def test_seen_matrix_of_sequences_is_the_same_set():
    seqs = [np.array([1, 2]), np.array([], np.int64), np.array([0, 3, 3])]
    seen = seen_matrix(seqs, 4)
    assert seen.shape == (3, 4)
    assert seen[np.array([0, 0, 1, 2, 2]), np.array([1, 2, 0, 0, 3])].tolist() == [True, True, False, True, True]


def test_negatives_are_unseen_from_either_generator():
    users, items, n_users, n_items = _log(1)
    seen = SeenItems(users, items, n_users, n_items)
    for rng in (np.random.default_rng(0), torch.Generator().manual_seed(0)):
        neg = sample_negatives(users, seen, rng)
        assert neg.shape == users.shape and not seen[users, neg].any()
        grid = sample_negatives(users[:10], seen, rng, size=(10, 5))
        assert grid.shape == (10, 5) and not seen[np.repeat(users[:10, None], 5, 1), grid].any()


def test_next_item_loss_is_full_softmax_up_to_the_limit_and_sampled_past_it():
    torch.manual_seed(0)
    h, w = torch.randn(6, 4), torch.randn(30, 4, requires_grad=True)
    pos = torch.tensor([0, 5, 5, 9, 29, 3])
    full = next_item_loss(h, w, pos, full_items=30, negatives=8, rng=np.random.default_rng(0))
    assert torch.allclose(full, F.cross_entropy(h @ w.T, pos))
    sampled = next_item_loss(h, w, pos, full_items=29, negatives=8, rng=np.random.default_rng(0))
    neg = torch.from_numpy(np.random.default_rng(0).integers(0, 30, size=8))
    logits = torch.cat([(h * w[pos]).sum(-1, keepdim=True), h @ w[neg].T], 1)
    logits[:, 1:] = logits[:, 1:].masked_fill(neg[None] == pos[:, None], float("-inf"))  # a draw of the positive
    assert torch.allclose(sampled, F.cross_entropy(logits, torch.zeros(6, dtype=torch.long)))
    sampled.backward()
    touched = (w.grad.abs().sum(1) > 0).nonzero().ravel().tolist()
    assert set(touched) <= set(pos.tolist()) | set(neg.tolist())  # only the positives and the draws move


def test_graph_batches_keep_the_configured_size_until_an_epoch_would_pass_max_steps():
    from ml_core.models.layers import graph_batch

    assert graph_batch(99_000, 2048, 200) == 2048  # every dataset the models were tuned on keeps its batch
    assert graph_batch(200 * 2048, 2048, 200) == 2048
    for n in (200 * 2048 + 1, 1_000_000, 25_000_000):
        batch = graph_batch(n, 2048, 200)
        assert batch > 2048 and -(-n // batch) <= 200 < -(-n // (batch - 1)) + 1
