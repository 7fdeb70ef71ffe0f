from ml_core.models.popularity import Popularity
from tests.ml_core.contract import RecommenderContract


class TestPopularity(RecommenderContract):
    unknown_user_scores_nan = False  # the popularity list is the cold-start answer
    min_hit_rate_at_1 = 0.0  # popularity cannot see the group pattern; it only has to rank consistently

    def make_model(self):
        return Popularity()
