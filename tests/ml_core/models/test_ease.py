import numpy as np

from ml_core.models.ease import EASE, EASEConfig
from tests.ml_core.contract import RecommenderContract


class TestEASE(RecommenderContract):
    def make_model(self):
        return EASE(EASEConfig(reg=1.0))

    def test_unseen_user_is_folded_in_from_history(self, fitted, split):
        history = split.train_seqs[0]
        as_known = fitted.score(history, np.arange(split.n_items), user=0)
        as_stranger = fitted.score(history, np.arange(split.n_items), user=None)
        np.testing.assert_array_equal(as_known, as_stranger)
