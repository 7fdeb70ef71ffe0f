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


class TestEASEHeadAndRemainder(RecommenderContract):
    """Past max_items (issue 17): a dense solve over the most interacted items, a sparse regression for the rest."""

    def make_model(self):
        return EASE(EASEConfig(reg=1.0, max_items=12, remainder_k=5))


def test_head_and_remainder_are_the_exact_ridge_solutions(tmp_path) -> None:
    from ml_core.interface import FitOptions, UserContext
    from tests.ml_core.contract import synthetic_interactions

    data = synthetic_interactions()
    x = data.matrix().toarray().astype(np.float64)
    full = EASE(EASEConfig(reg=3.0, max_items=data.n_items))
    full.fit(data, FitOptions(progress=False))
    assert full.head is None  # small catalogues: the dense solve, as before
    model = EASE(EASEConfig(reg=3.0, max_items=10, remainder_k=10))
    model.fit(data, FitOptions(progress=False))
    head, rest = model.head, model.remainder
    assert len(head) == 10 and len(rest) == data.n_items - 10
    assert x[:, head].sum(axis=0).min() >= x[:, rest].sum(axis=0).max()  # the head is the most interacted
    xh = x[:, head]
    p = np.linalg.inv(xh.T @ xh + 3.0 * np.eye(10))
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.weights, b, rtol=1e-4, atol=1e-6)  # EASE on the head
    ridge = np.linalg.solve(xh.T @ xh + 3.0 * np.eye(10), xh.T @ x[:, rest])  # k = head size: nothing dropped
    np.testing.assert_allclose(model.remainder_weights.toarray(), ridge, rtol=1e-4, atol=1e-5)
    history = np.asarray([head[0], head[3], rest[0]])
    scores = model.score_batch([UserContext(history=history)])[0]
    expected = np.zeros(data.n_items)
    expected[head] = b[[0, 3]].sum(axis=0)
    expected[rest] = ridge[[0, 3]].sum(axis=0)  # a remainder item in the history is no input
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    model.export(tmp_path / "ease")
    again = EASE.load(tmp_path / "ease")
    np.testing.assert_allclose(again.score_batch([UserContext(history=history)])[0], scores, rtol=1e-6)
    sparse_model = EASE(EASEConfig(reg=3.0, max_items=10, remainder_k=3))
    sparse_model.fit(data, FitOptions(progress=False))
    assert (np.diff(sparse_model.remainder_weights.tocsc().indptr) <= 3).all()  # k coefficients per remainder item
