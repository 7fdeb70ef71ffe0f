import numpy as np

from ml_core.interface import FitOptions
from ml_core.models.sasrec import SASRec, SASRecBCE, SASRecConfig
from tests.ml_core.contract import RecommenderContract

TINY = dict(embedding_size=8, max_len=8, n_layers=1, n_heads=1, ff_size=16, dropout=0.0, learning_rate=0.05, batch_size=32)


class TestSASRec(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=30)
    min_hit_rate_at_1 = 0.8

    def make_model(self):
        return SASRec(SASRecConfig(**TINY))

    def test_history_order_matters(self, fitted, split):
        history = split.train_seqs[0]
        forward = fitted.score(history, np.arange(split.n_items))
        backward = fitted.score(history[::-1], np.arange(split.n_items))
        assert not np.allclose(forward, backward)


class TestSASRecBCE(RecommenderContract):
    fit_options = FitOptions(seed=7, progress=False, max_epochs=30)
    min_hit_rate_at_1 = 0.8  # one sampled negative learns the pattern more slowly

    def make_model(self):
        return SASRecBCE(SASRecConfig(**TINY, loss="bce"))


class TestSASRecSampledSoftmax(RecommenderContract):
    """Past `full_softmax_items` the next item competes with sampled negatives only (large catalogues)."""

    fit_options = FitOptions(seed=7, progress=False, max_epochs=30)
    min_hit_rate_at_1 = 0.8

    def make_model(self):
        return SASRec(SASRecConfig(**TINY, full_softmax_items=8, negatives=12))
