"""The serving engine on a tiny real bundle: tiers, user/item lists, explain, filters, gating, hot reloads."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml_core.serving import Tier, detect_tier, load_engine, parse_tier, read_published_state
from ml_core.serving_artifacts import verify_bundle, write_bundle_manifest
from tests.ml_core.serving_bundle import GENRES, N_PER_GENRE, tiny_metadata

SCI_FI = list(range(101, 101 + N_PER_GENRE))
META = tiny_metadata()


@pytest.fixture(scope="module")
def engine(serving_bundle: Path):  # noqa: ANN201
    return load_engine(serving_bundle, Tier.TORCH)


def test_tier_detection_follows_gpu_and_memory() -> None:
    assert detect_tier(ram_bytes=32 * 2**30, cuda=True) == Tier.TORCH
    assert detect_tier(ram_bytes=12 * 2**30, cuda=True) == Tier.ONNX
    assert detect_tier(ram_bytes=12 * 2**30, cuda=False) == Tier.ONNX
    assert detect_tier(ram_bytes=4 * 2**30, cuda=False) == Tier.LITE


def test_tier_override_values() -> None:
    assert parse_tier("") is None and parse_tier("2") == Tier.ONNX and parse_tier("lite") == Tier.LITE
    with pytest.raises(ValueError, match="not understood"):
        parse_tier("fast")


def test_a_sci_fi_watcher_gets_sci_fi_with_propensities(engine) -> None:  # noqa: ANN001
    result = engine.recommend_user(SCI_FI[:4], ratings=[5, 4, 5, 4], k=5, temperature=0.0)
    ids = [i["movie_id"] for i in result.items]
    assert len(ids) == 5 and not set(ids) & set(SCI_FI[:4])
    assert sum(META[m]["genres"] == ["Sci-Fi"] for m in ids) >= 4
    assert [i["position"] for i in result.items] == list(range(5))
    assert all(i["propensity"] == 1.0 for i in result.items)
    sampled = engine.recommend_user(SCI_FI[:4], k=5, temperature=0.5, seed=1)
    assert all(0 < i["propensity"] <= 1 for i in sampled.items)


def test_explain_payload_has_sources_contributions_boosts_and_a_sentence(engine) -> None:  # noqa: ANN001
    result = engine.recommend_user(SCI_FI[:3], ratings=[5.0, 3.0, 4.0], k=3, explain=True, temperature=0.0)
    exp = result.items[0]["explanation"]
    assert set(exp["sources"]) <= {"embedding", "content", "knowledge_graph", "popular"} and exp["sources"]
    assert set(exp["contributions"]) == {"sasrec", "lightgcn", "ease", "diffusion"}
    assert isinstance(exp["boosts"], list)
    assert exp["sentence"].startswith("Because you rated Sci-Fi film")
    assert " stars" in exp["sentence"]


def test_a_pick_is_never_explained_by_a_movie_the_member_rated_low(engine) -> None:  # noqa: ANN001
    low = set(SCI_FI[:2])
    mixed = engine.recommend_user(SCI_FI[:4], ratings=[1.0, 2.0, 5.0, 4.5], k=5, explain=True, temperature=0.0)
    anchors = {i["explanation"]["anchor_movie_id"] for i in mixed.items}
    assert anchors and not anchors & low and anchors <= set(SCI_FI[2:4])
    assert not any(META[m]["title"] in i["explanation"]["sentence"] for i in mixed.items for m in low)
    disliked = engine.recommend_user(SCI_FI[:3], ratings=[1.0, 2.0, 2.5], k=3, explain=True, temperature=0.0)
    for item in disliked.items:  # nothing they liked: no movie is named
        assert item["explanation"]["anchor_movie_id"] is None
        assert not item["explanation"]["sentence"].startswith("Because you")


def test_unknown_user_gets_the_popular_cold_start_list(engine) -> None:  # noqa: ANN001
    result = engine.recommend_user([999_999], k=4, explain=True)
    assert result.cold_start and len(result.items) == 4
    counts = dict(engine.trending(len(engine.movie_ids)))
    top = sorted(counts.values(), reverse=True)[:4]
    assert [counts[i["movie_id"]] for i in result.items] == top
    assert result.items[0]["explanation"]["sentence"] == "Popular with everyone right now"


def test_filters_keep_only_matching_movies(engine) -> None:  # noqa: ANN001
    result = engine.recommend_user(SCI_FI[:4], k=5, genre="drama", year_min=1990)
    assert result.items and all(META[i["movie_id"]]["genres"] == ["Drama"] and META[i["movie_id"]]["year"] >= 1990
                                for i in result.items)


def test_item_recommendations_and_unknown_movie(engine) -> None:  # noqa: ANN001
    result = engine.recommend_item(101, k=4, explain=True)
    ids = [i["movie_id"] for i in result.items]
    assert 101 not in ids and META[ids[0]]["genres"] == ["Sci-Fi"]
    assert any("franchise" in i["explanation"]["boosts"] for i in result.items)
    with pytest.raises(KeyError):
        engine.recommend_item(5)


def test_knowledge_graph_groups_neighbours(engine) -> None:  # noqa: ANN001
    graph = engine.knowledge_graph(101, k=5)
    assert {i["movie_id"] for i in graph["relations"]["franchise"]} == {102, 103}
    assert graph["entities"]["director"] == "Ridley Scott"


def test_weights_hot_swap_changes_the_blend_without_reloading(engine) -> None:  # noqa: ANN001
    before = engine.weights_version
    engine.set_weights({"ease": 1.0}, "only-ease")
    try:
        result = engine.recommend_user(SCI_FI[:3], k=3, explain=True, temperature=0.0)
        assert result.weights_version == "only-ease"
        contributions = result.items[0]["explanation"]["contributions"]
        assert contributions["sasrec"] == 0 and contributions["lightgcn"] == 0
        with pytest.raises(ValueError):
            engine.set_weights({"sasrec": 0.0}, "all-zero")
    finally:
        engine.set_weights(json.loads((engine.directory / "ensemble.json").read_text())["weights"], before)


def test_uncertainty_gating_falls_back_to_content_and_is_recorded(serving_bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "serving"
    shutil.copytree(serving_bundle, copy)
    ensemble = json.loads((copy / "ensemble.json").read_text())
    (copy / "ensemble.json").write_text(json.dumps({**ensemble, "gating_threshold": -1.0}))  # always gate
    eng = load_engine(copy, Tier.TORCH)
    result = eng.recommend_user(SCI_FI[:3], k=3, explain=True)
    assert result.gated and eng.stats()["gated"] == 1
    assert "models disagreed" in result.items[0]["explanation"]["sentence"]


def test_fairness_audit_per_list_and_aggregated(engine) -> None:  # noqa: ANN001
    result = engine.recommend_user(SCI_FI[:3], k=5, audit=True)
    assert {"kl_genre_catalogue", "kl_popularity_catalogue", "kl_genre_profile"} <= set(result.fairness)
    assert engine.fairness_summary()["lists"] >= 1


def test_tier3_serves_without_importing_torch(serving_bundle: Path) -> None:
    code = ("import sys; from ml_core.serving import load_engine, Tier; "
            f"e = load_engine({str(serving_bundle)!r}, Tier.LITE); r = e.recommend_user([101, 102], k=3); "
            "print(len(r.items), 'torch' in sys.modules, e.tier_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["3", "False", "tier3-faiss-tfidf"]


def test_artifact_reload_on_a_new_manifest_and_checksum_health(serving_bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "serving"
    shutil.copytree(serving_bundle, copy)
    eng = load_engine(copy, Tier.LITE)
    assert not eng.reload_if_changed()
    assert verify_bundle(copy)["ok"]
    write_bundle_manifest(copy, models=json.loads((copy / "manifest.json").read_text())["models"])
    assert eng.reload_if_changed()
    (copy / "popularity.npy").write_bytes(b"tampered")
    health = verify_bundle(copy)
    assert not health["ok"] and health["mismatches"] == [{"file": "popularity.npy", "problem": "sha256 mismatch"}]


def test_online_state_swaps_counters_into_the_engine(serving_bundle: Path) -> None:
    from ml_core.serving.online import OnlineEvent

    eng = load_engine(serving_bundle, Tier.TORCH)
    learner = eng.online_learner()
    item = eng.item_index(140)
    before = dict(eng.trending(eng.n_items))[140]
    learner.apply([OnlineEvent(f"e{i}", user=1, item=item, kind="click", value=None, time=2e6 + i) for i in range(50)])
    assert dict(eng.trending(eng.n_items))[140] == before  # the learner works on its own copy
    other = load_engine(serving_bundle, Tier.TORCH)
    other.apply_online_state(read_published_state(learner.state_bytes()))
    assert dict(other.trending(other.n_items))[140] == before + 50
    assert other.online_version == 1
    assert other.recommend_user([], k=1).items[0]["movie_id"] == 140


def test_the_engine_refuses_an_online_state_learned_on_another_bundle(serving_bundle: Path) -> None:
    from ml_core.serving.online import OnlineEvent

    eng = load_engine(serving_bundle, Tier.TORCH)
    learner = eng.online_learner()
    learner.apply([OnlineEvent("e1", user=1, item=eng.item_index(101), kind="click", value=None, time=2e6)])
    state = learner.published_state()
    with pytest.raises(ValueError, match="items on"):
        eng.apply_online_state(dataclasses.replace(state, base="bundle:another"))
    with pytest.raises(ValueError, match="items on"):
        eng.apply_online_state(dataclasses.replace(state, n_items=state.n_items + 1))
    assert eng.online_version == 0
    eng.apply_online_state(state)
    assert eng.online_version == state.version == 1


def test_tier2_matches_tier1_closely(serving_bundle: Path, engine) -> None:  # noqa: ANN001
    ensemble = json.loads((serving_bundle / "ensemble.json").read_text())
    if not ensemble.get("onnx_models"):
        pytest.skip("no ONNX exports in the bundle (ml_core.onnx_export unavailable)")
    tier2 = load_engine(serving_bundle, Tier.ONNX)
    overlaps, errors = [], []
    for g in range(len(GENRES)):
        hist = [101 + g * N_PER_GENRE + j for j in range(3)]
        a = engine.recommend_user(hist, k=10, temperature=0.0)
        b = tier2.recommend_user(hist, k=10, temperature=0.0)
        overlaps.append(len({i["movie_id"] for i in a.items} & {i["movie_id"] for i in b.items}) / 10)
        sa = {i["movie_id"]: i["score"] for i in a.items}
        errors += [abs(sa[i["movie_id"]] - i["score"]) for i in b.items if i["movie_id"] in sa]
    # stated parity bar: mean top-10 overlap >= 0.8 and mean |score error| <= 0.05 on [0, 1]-scaled relevance
    assert np.mean(overlaps) >= 0.8
    assert np.mean(errors) <= 0.05


def test_tier1_puts_torch_nets_on_cuda_only_when_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ml_core.serving.tiers import serving_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [serving_device(t) for t in (1, 2, 3)] == ["cuda", "cpu", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert serving_device(1) == "cpu"


def test_tier1_on_the_cpu_serves_from_nets_on_the_cpu(serving_bundle: Path) -> None:
    from ml_core.serving.bundle import Bundle
    from ml_core.serving.pipeline import recommend_user

    bundle = Bundle.load(serving_bundle, 1, device="cpu")
    nets = [s.net for s in bundle.scorers.values() if getattr(s, "net", None) is not None]
    assert bundle.device == "cpu" and nets
    assert all(p.device.type == "cpu" for net in nets for p in net.parameters())
    assert len(recommend_user(bundle, SCI_FI[:3], k=5, temperature=0.0).items) == 5


@pytest.mark.gpu
def test_tier1_on_cuda_ranks_like_the_cpu(serving_bundle: Path) -> None:
    import torch

    from ml_core.serving.bundle import Bundle
    from ml_core.serving.pipeline import recommend_user

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu, gpu = Bundle.load(serving_bundle, 1, device="cpu"), Bundle.load(serving_bundle, 1, device="cuda")
    assert any(p.device.type == "cuda" for s in gpu.scorers.values() if getattr(s, "net", None) is not None
               for p in s.net.parameters())
    for g in range(len(GENRES)):
        hist = [101 + g * N_PER_GENRE + j for j in range(3)]
        a, b = (recommend_user(bundle, hist, k=10, temperature=0.0) for bundle in (cpu, gpu))
        assert [i["movie_id"] for i in a.items] == [i["movie_id"] for i in b.items]
