"""Explain payloads: per item the retrieval sources, per-model contributions, boosts and a human sentence."""

from __future__ import annotations

from typing import Any

import numpy as np

RELATION_WORDS = {"franchise": "same franchise", "director": "same director", "genre": "similar genres",
                  "era": "same era"}
LIKED_RATING = 4.0  # a pick is explained by a movie the member liked when there is one
LOW_RATING = 3.0  # ...and never by one they rated below this
NO_ANCHOR_SENTENCE = "Members whose ratings resemble yours rated it highly"


def _title(b: Any, item: int) -> str:
    return str(b.meta[item].get("title") or f"movie {b.movie_ids[item]}")


def _stars(value: float) -> str:
    v = float(value)
    text = f"{v:g}"
    return f"{text} star" if v == 1 else f"{text} stars"


def _contributions(b: Any, norm: np.ndarray | None, pos: int) -> dict[str, float]:
    if norm is None or not len(b.model_names):
        return {}
    return {m: round(float(w * norm[j, pos]), 4) for j, (m, w) in enumerate(zip(b.model_names, b.weights, strict=False))}


def _anchor_pool(hist: np.ndarray, rating_of: dict[int, float]) -> np.ndarray:
    """History items a pick may be explained by: the liked ones (rated >= LIKED_RATING, or watched without a
    rating) when there are any, else those not rated low; empty when every item was rated low."""
    liked = np.asarray([i for i in hist.tolist() if rating_of.get(i, LIKED_RATING) >= LIKED_RATING], np.int64)
    if len(liked):
        return liked
    return np.asarray([i for i in hist.tolist() if rating_of.get(i, LOW_RATING) >= LOW_RATING], np.int64)


def _best_anchor(b: Any, item: int, hist: np.ndarray) -> tuple[int, list[str]]:
    """The history item that best explains ``item``: shared franchise/director first, then embedding cosine."""
    recent = hist[-30:]
    sims = b.faiss.vectors[recent] @ b.faiss.vectors[item]
    bonus = np.asarray([0.5 * (b.facts.franchise[a] == b.facts.franchise[item] >= 0)
                        + 0.3 * (b.facts.director[a] == b.facts.director[item] >= 0) for a in recent.tolist()])
    j = int(np.argmax(sims + bonus))
    anchor = int(recent[j])
    return anchor, b.kg.relation_names(item, anchor)


def _relation_clause(relations: list[str]) -> str:
    strong = [RELATION_WORDS[r] for r in relations if r in ("franchise", "director")]
    return f" ({', '.join(strong)})" if strong else ""


def explain_user_items(b: Any, result: Any, cands: Any, chosen: np.ndarray, boosts: list[list[str]],
                       norm: np.ndarray | None, hist: np.ndarray, rates: np.ndarray | None, gated: bool) -> None:
    """Attach an explanation to every item of a user list (in place)."""
    rating_of = {} if rates is None else {int(i): float(r) for i, r in zip(hist.tolist(), rates.tolist(), strict=False)}
    pool = _anchor_pool(hist, rating_of)
    for entry, pos, applied in zip(result.items, chosen.tolist(), boosts, strict=True):
        item = int(cands.items[pos])
        anchor: int | None = None
        relations: list[str] = []
        if len(pool):
            anchor, relations = _best_anchor(b, item, pool)
        if anchor is None:
            sentence = NO_ANCHOR_SENTENCE
        elif anchor in rating_of:
            sentence = f"Because you rated {_title(b, anchor)} {_stars(rating_of[anchor])}"
        else:
            sentence = f"Because you watched {_title(b, anchor)}"
        sentence += _relation_clause(relations)
        if gated:
            sentence += "; the models disagreed, so this list is ranked by content similarity"
        entry["explanation"] = {"sources": cands.sources_of(item), "contributions": _contributions(b, norm, pos),
                                "boosts": applied, "anchor_movie_id": None if anchor is None else b.movie_ids[anchor],
                                "shared": relations, "sentence": sentence}


def explain_item_items(b: Any, result: Any, cands: Any, chosen: np.ndarray, boosts: list[list[str]],
                       norm: np.ndarray | None, anchor: int) -> None:
    """Attach an explanation to every item of a 'more like this' list (in place)."""
    for entry, pos, applied in zip(result.items, chosen.tolist(), boosts, strict=True):
        item = int(cands.items[pos])
        relations = b.kg.relation_names(item, anchor)
        words = [RELATION_WORDS[r] for r in relations]
        sentence = f"Because you looked at {_title(b, anchor)}"
        if words:
            sentence += ": " + ", ".join(words)
        entry["explanation"] = {"sources": cands.sources_of(item), "contributions": _contributions(b, norm, pos),
                                "boosts": applied, "anchor_movie_id": b.movie_ids[anchor], "shared": relations,
                                "sentence": sentence}
