"""The results page's figure: over the stored looks, each arm's estimate with its interval, its always-valid p-value
against control, and its traffic share."""

from __future__ import annotations

import io
from typing import Any

ARM_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def results_png(*, history: list[dict[str, Any]], arm_names: dict[int, str], metric: str, alpha: float = 0.05
                ) -> bytes:
    """A PNG (matplotlib, Agg): estimate and interval per arm over time on top, p-values, then allocation."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(8, 6), dpi=100)
    top, middle, bottom = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1]})
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
        tested = [(t, max(h["p_value"], 1e-16)) for t, h in zip(times, looks, strict=True) if h["p_value"] is not None]
        if tested:  # treatments only: control has no test against itself
            middle.plot(*zip(*tested, strict=True), marker=".", color=colour)
        bottom.step(times, [h["allocation"] for h in looks], where="post", color=colour, label=name,
                    linestyle="-" if i == 0 else "--")
    top.set_ylabel(metric.replace("_", " "))
    top.set_title("Per-arm estimate (mean over members) with its confidence interval, per look")
    if arm_names:
        top.legend(loc="best", fontsize="small")
    if not history:
        top.text(0.5, 0.5, "No looks yet: the monitor stores one every few minutes", ha="center", va="center",
                 transform=top.transAxes)
    middle.axhline(alpha, color="grey", linewidth=0.8, linestyle=":")
    middle.set_yscale("log")
    middle.yaxis.set_minor_formatter(NullFormatter())
    middle.set_ylabel("p vs control")
    bottom.set_ylabel("traffic share")
    bottom.set_ylim(0, 1)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
