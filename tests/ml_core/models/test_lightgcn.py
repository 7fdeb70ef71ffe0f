import numpy as np

from ml_core.interface import FitOptions
from ml_core.models.lightgcn import LightGCN, LightGCNConfig
from tests.ml_core.contract import RecommenderContract


class TestLightGCN(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return LightGCN(LightGCNConfig(embedding_size=8, n_layers=2, learning_rate=0.05, batch_size=128))

    def test_unseen_user_is_scored_from_history(self, fitted, split):
        history = split.train_seqs[0]
        scores = fitted.score(history, np.arange(split.n_items), user=None)
        assert np.isfinite(scores).all()
        group = set(range((history[0] // 6) * 6, (history[0] // 6) * 6 + 6))
        unseen_best = [i for i in np.argsort(-scores) if i not in set(history)][0]
        assert unseen_best in group


class TestLightGCNSampledSoftmax(RecommenderContract):
    """The contrastive variant in the search space passes the same contract (learns the groups, exports, loads)."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return LightGCN(LightGCNConfig(embedding_size=8, n_layers=2, learning_rate=0.05, batch_size=128,
                                       loss="softmax", negatives=16, temperature=0.2))


def test_an_unknown_loss_is_refused():
    import pytest

    with pytest.raises(ValueError, match="loss must be"):
        LightGCNConfig(loss="hinge")


class TestLightGCNStepBoundedEpochs(RecommenderContract):
    """Past max_steps * batch_size pairs an epoch makes at most max_steps propagations (larger batches, the
    square-root step rule): the model still learns the groups, exports and loads."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=60)

    def make_model(self):
        return LightGCN(LightGCNConfig(embedding_size=8, n_layers=2, learning_rate=0.05, batch_size=64, max_steps=3))


def test_an_epoch_propagates_at_most_max_steps_times_past_the_threshold(monkeypatch):
    from ml_core.models.lightgcn import LightGCNNet
    from tests.ml_core.contract import synthetic_interactions

    data = synthetic_interactions()
    pairs = len(np.unique(np.stack([data.users, data.items], 1), axis=0))
    original, calls = LightGCNNet.propagate, []

    def counted(net):
        calls.append(net.training)
        return original(net)

    monkeypatch.setattr(LightGCNNet, "propagate", counted)
    for batch_size, max_steps, expected in ((16, 3, 3), (pairs, 3, 1), (32, pairs, -(-pairs // 32))):
        calls.clear()
        LightGCN(LightGCNConfig(embedding_size=8, n_layers=2, batch_size=batch_size, max_steps=max_steps)).fit(
            data, FitOptions(seed=0, progress=False, max_epochs=1))
        assert sum(calls) == expected  # training steps (the cache and the validation propagate in eval mode)
