import numpy as np

from ml_core.models.itemknn import ItemKNN, ItemKNNConfig
from tests.ml_core.contract import RecommenderContract


class TestItemKNN(RecommenderContract):
    def make_model(self):
        return ItemKNN(ItemKNNConfig(k=10))


def test_neighbours_are_built_a_block_of_items_at_a_time_with_the_same_result(monkeypatch) -> None:
    """Scale (issue 17): the similarity is sparse top-k, computed in row blocks; any block size, the same matrix."""
    from scipy import sparse

    from ml_core.models import itemknn

    rng = np.random.default_rng(0)
    x = sparse.random(300, 120, density=0.08, format="csr", random_state=1, dtype=np.float32)
    x.data[:] = 1.0
    whole = itemknn.item_neighbours(x, k=7, shrink=10.0)
    monkeypatch.setattr(itemknn, "BLOCK_BYTES", 13 * 120 * 4)  # 13 items per block
    blocked = itemknn.item_neighbours(x, k=7, shrink=10.0)
    assert sparse.isspmatrix_csr(blocked) and blocked.shape == (120, 120)
    assert np.array_equal(whole.toarray(), blocked.toarray())
    assert (np.diff(blocked.indptr) <= 7).all() and blocked.diagonal().sum() == 0  # k neighbours, never itself
    dense = x.T @ x
    norms = np.sqrt(dense.diagonal())
    i = int(rng.integers(0, 120))
    row = dense.toarray()[i] / (norms[i] * norms + 10.0 + 1e-8)
    row[i] = 0.0
    kept = blocked[i].indices
    assert np.allclose(blocked[i].data, row[kept], rtol=1e-5)
    assert row[kept].min() >= np.sort(row)[-7] - 1e-6  # the kept ones are the 7 most similar
