from ml_core.models.itemknn import ItemKNN, ItemKNNConfig
from tests.ml_core.contract import RecommenderContract


class TestItemKNN(RecommenderContract):
    def make_model(self):
        return ItemKNN(ItemKNNConfig(k=10))
