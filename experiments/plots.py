"""The results page's figure: each arm's estimate with its interval over the stored looks, and its traffic share."""

from __future__ import annotations

import io
from typing import Any

ARM_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def results_png(*, history: list[dict[str, Any]], arm_names: dict[int, str], metric: str) -> bytes:
    """A PNG (matplotlib, Agg): estimate and interval per arm over time on top, allocation below."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for i, (arm_id, name) in enumerate(arm_names.items()):
        looks = [h for h in history if h["arm_id"] == arm_id]
        colour = ARM_COLOURS[i % len(ARM_COLOURS)]
        times = [h["computed_at"] for h in looks]
        est = [h["estimate"] for h in looks]
        known = [(t, e, h["ci_low"], h["ci_high"]) for t, e, h in zip(times, est, looks, strict=True)
                 if e is not None and h["ci_low"] is not None]
        if known:
            t, e, lo, hi = zip(*known, strict=True)
            top.plot(t, e, marker="o", color=colour, label=name)
            top.fill_between(t, lo, hi, color=colour, alpha=0.15)
        bottom.step(times, [h["allocation"] for h in looks], where="post", color=colour, label=name)
    top.set_ylabel(metric.replace("_", " "))
    top.set_title("Per-arm estimate (mean over members) with its confidence interval, per look")
    if arm_names:
        top.legend(loc="best", fontsize="small")
    if not history:
        top.text(0.5, 0.5, "No looks yet: the monitor stores one every few minutes", ha="center", va="center",
                 transform=top.transAxes)
    bottom.set_ylabel("traffic share")
    bottom.set_ylim(0, 1)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
