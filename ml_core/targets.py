"""The quality bars every dataset's cards are held to (issue 15), in one place for the cards and the ensemble."""

from __future__ import annotations

# every ensemble model's test NDCG@10 at least this many times popularity's
POPULARITY_RATIO = 1.5
# the DR blend's test NDCG@10 at least this many times the best single model's
ENSEMBLE_TARGET_RATIO = 1.1
