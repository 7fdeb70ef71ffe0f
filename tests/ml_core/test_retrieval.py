"""FAISS (exact and HNSW), TF-IDF content index, knowledge graph, and the union that keeps sources."""

from __future__ import annotations

import numpy as np

from ml_core.retrieval import ContentIndex, EmbeddingIndex, KnowledgeGraph, union
from tests.ml_core.serving_bundle import tiny_metadata


def test_flat_index_is_exact_and_hnsw_is_used_above_the_threshold(tmp_path) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    flat = EmbeddingIndex.build(vecs)
    assert flat.kind == "flat"
    items, scores = flat.search(vecs[7], 5)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    assert items.tolist() == np.argsort(-(unit @ unit[7]))[:5].tolist()
    hnsw = EmbeddingIndex.build(vecs, hnsw_threshold=100)
    assert hnsw.kind == "hnsw" and hnsw.index.hnsw.efSearch >= 128
    overlap = len(set(hnsw.search(vecs[7], 10)[0].tolist()) & set(flat.search(vecs[7], 10)[0].tolist()))
    assert overlap >= 9
    hnsw.save(tmp_path)
    again = EmbeddingIndex.load(tmp_path)
    assert again.kind == "hnsw" and again.search(vecs[7], 3)[0].tolist() == hnsw.search(vecs[7], 3)[0].tolist()


def _metadata() -> list[dict]:
    return list(tiny_metadata().values())


def test_tfidf_neighbours_share_genre_words_and_director() -> None:
    meta = _metadata()
    index = ContentIndex.build(meta)
    items, scores = index.similar(0, 5)  # a Sci-Fi film by Ridley Scott
    assert all(meta[i]["genres"] == ["Sci-Fi"] for i in items.tolist())
    assert (np.diff(scores) <= 1e-6).all()
    top, _ = index.query_profile(np.array([10, 11]), 5)  # two dramas
    assert all(meta[i]["genres"] == ["Drama"] for i in top.tolist())


def test_knowledge_graph_ranks_franchise_then_director_and_groups_by_relation() -> None:
    meta = _metadata()
    kg = KnowledgeGraph.build(meta)
    items, _ = kg.similar(0, 3)
    assert set(items[:2].tolist()) == {1, 2}  # the other two films of the "Sci-Fi saga"
    groups = kg.neighbourhood(0, 5)
    assert {i for i, _ in groups["franchise"]} == {1, 2}
    assert all(meta[i]["director"] == "Ridley Scott" for i, _ in groups["director"])
    assert kg.relation_names(0, 2) == ["franchise", "director", "genre", "era"]  # 1980 and 1984


def test_union_keeps_every_source_of_each_candidate_and_drops_excluded() -> None:
    cands = union({"embedding": (np.array([5, 6, 7]), None), "content": (np.array([6, 8]), None),
                   "popular": (np.array([1, 5]), None)}, exclude=np.array([1]))
    assert cands.items.tolist() == [5, 6, 8, 7]
    assert cands.sources_of(6) == ["embedding", "content"]
    assert cands.sources_of(5) == ["embedding", "popular"]
    assert cands.sources[8] == ["content"]
