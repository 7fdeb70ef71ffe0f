"""docs/FAIRNESS.md and its plots (docs/img/fairness_<dataset>_<attribute>.png) from a fairness report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGES = ("before", "after")
KL_COLUMNS = (("kl_genre_history", "KL genre vs history"), ("kl_popularity_history", "KL popularity vs history"),
              ("kl_genre_catalogue", "KL genre vs catalogue"), ("kl_popularity_catalogue", "KL popularity vs catalogue"))


def _ci(metrics: dict[str, Any], key: str) -> str:
    lo, hi = metrics[f"{key}_ci"]
    interval = "" if lo is None else f" [{lo:.3f}, {hi:.3f}]"
    return f"{metrics[key]:.4f}{interval}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _arrow(before: dict[str, Any], after: dict[str, Any], key: str) -> str:
    return f"{_num(before[key])} → {_num(after[key])}"


def overall_table(report: dict[str, Any]) -> list[str]:
    """One row per stage over every evaluated member."""
    k = report["k"]
    lines = [f"| stage | NDCG@{k} [95% CI] | HR@{k} [95% CI] | exposure Gini | Gini, {report['min_group_users']} users "
             "| coverage | " + " | ".join(label for _, label in KL_COLUMNS) + " |", "|---" * 10 + "|"]
    for stage in STAGES:
        m = report["overall"][stage]
        lines.append(f"| {stage} re-ranking | {_ci(m, f'ndcg@{k}')} | {_ci(m, f'hr@{k}')} | {m['gini_exposure']:.3f} "
                     f"| {_num(m['gini_matched'])} | {m['coverage']:.3f} | "
                     + " | ".join(f"{m[key]:.3f}" for key, _ in KL_COLUMNS) + " |")
    return lines


def accuracy_table(report: dict[str, Any], attribute: str) -> list[str]:
    """Per group: NDCG@k and HR@k with intervals, before and after the re-ranker."""
    k = report["k"]
    lines = [f"| {attribute} | users | NDCG@{k} before [95% CI] | NDCG@{k} after [95% CI] | HR@{k} before [95% CI] "
             f"| HR@{k} after [95% CI] | vs all (before / after) |", "|---" * 7 + "|"]
    for g in report["attributes"][attribute]["groups"]:
        b, a = g["before"], g["after"]
        flag = " †" if g["small"] else ""
        lines.append(f"| {g['group']}{flag} | {g['n_users']} | {_ci(b, f'ndcg@{k}')} | {_ci(a, f'ndcg@{k}')} "
                     f"| {_ci(b, f'hr@{k}')} | {_ci(a, f'hr@{k}')} | {b['vs_all'] or '-'} / {a['vs_all'] or '-'} |")
    return lines


def exposure_table(report: dict[str, Any], attribute: str) -> list[str]:
    """Per group: exposure Gini (raw and size-matched), coverage and the four KLs, before → after."""
    lines = [f"| {attribute} | Gini | Gini, {report['min_group_users']} users | coverage | "
             + " | ".join(label for _, label in KL_COLUMNS) + " |", "|---" * 8 + "|"]
    for g in report["attributes"][attribute]["groups"]:
        b, a = g["before"], g["after"]
        cells = [_arrow(b, a, key) for key in ("gini_exposure", "gini_matched", "coverage")]
        cells += [_arrow(b, a, key) for key, _ in KL_COLUMNS]
        lines.append(f"| {g['group']}{' †' if g['small'] else ''} | " + " | ".join(cells) + " |")
    return lines


def gap_lines(report: dict[str, Any]) -> list[str]:
    """Per attribute: the best and worst group (of the minimum size) by NDCG@k and the gap, before and after."""
    k = report["k"]
    lines = [f"| attribute | before: best / worst | NDCG@{k} gap | p (before) | after: best / worst | NDCG@{k} gap "
             "| p (after) |", "|---|---|---|---|---|---|---|"]
    for name, attr in report["attributes"].items():
        cells = []
        for stage in STAGES:
            gap = attr["gaps"][stage]
            cells += (["-", "-"] if gap is None else
                      [f"{gap['best']} / {gap['worst']}", f"{gap[f'ndcg@{k}']:.4f} (worst = {_num(gap['ratio'], 2)}× best)"])
            cells.append(_num(attr["p_value"][stage]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def findings(report: dict[str, Any]) -> list[str]:
    """Plain sentences read off the numbers (no judgement beyond them)."""
    k = report["k"]
    key = f"ndcg@{k}"
    b, a = report["overall"]["before"], report["overall"]["after"]
    out = [f"- Overall, the re-ranker moves NDCG@{k} from {b[key]:.4f} to {a[key]:.4f} and the exposure Gini from "
           f"{b['gini_exposure']:.3f} to {a['gini_exposure']:.3f}; the lists' genre KL against the members' own "
           f"histories goes from {b['kl_genre_history']:.3f} to {a['kl_genre_history']:.3f}."]
    for name, attr in report["attributes"].items():
        below = [g["group"] for g in attr["groups"] if g["before"]["vs_all"] == "below"]
        above = [g["group"] for g in attr["groups"] if g["before"]["vs_all"] == "above"]
        gb, ga = attr["gaps"]["before"], attr["gaps"]["after"]
        text = f"- {name}: "
        text += (f"groups whose 95% interval lies below the overall NDCG@{k}: {', '.join(below)}; "
                 if below else f"no group's 95% interval lies below the overall NDCG@{k}; ")
        if above:
            text += f"above it: {', '.join(above)}; "
        if gb is not None and ga is not None:
            p, alpha = attr["p_value"]["before"], 0.05 / len(report["attributes"])  # Bonferroni over attributes
            chance = (f"beyond what shuffling the labels gives (p < {alpha:.3f})" if p is not None and p < alpha
                      else f"within what shuffling the labels gives at 0.05 / {len(report['attributes'])} attributes")
            text += (f"the gap between the best and worst group of at least {report['min_group_users']} members is "
                     f"{gb[key]:.4f} before and {ga[key]:.4f} after re-ranking; the groups' spread is {chance} "
                     f"(permutation p = {_num(p)} before, {_num(attr['p_value']['after'])} after).")
        out.append(text.rstrip("; ") + ("" if text.endswith(".") else "."))
        moved = [(g["group"], g["after"][key] - g["before"][key]) for g in attr["groups"] if not g["small"]]
        if moved:
            lo, hi = min(moved, key=lambda x: x[1]), max(moved, key=lambda x: x[1])
            out.append(f"  Re-ranking changes NDCG@{k} by {lo[1]:+.4f} ({lo[0]}) to {hi[1]:+.4f} ({hi[0]}) across "
                       "these groups.")
    return out


def write_fairness_card(report: dict[str, Any], docs: Path, command: str) -> Path:
    """Write ``docs``/FAIRNESS.md and one PNG per attribute under ``docs``/img; returns the Markdown path."""
    docs = Path(docs)
    model = report["model"]
    k = report["k"]
    lines = [f"# Fairness report ({report['dataset']})", "",
             f"Produced by `{command}` at {report['created_at']} in {report['seconds']:.0f} s. "
             f"{report['n_users']} members with a held-out event; groups from the dataset's member attributes.", "",
             f"**Model**: {model['note']}: {', '.join(model['models'])}"
             + (f", configuration {model['config']} ({model['config_source']})" if "config" in model else "")
             + f", fitted in {model['fit_seconds']:.1f} s."
             + (f" With `python -m ml_core ensemble --dataset {report['dataset']}` run first, this command ranks with "
                "that ensemble instead." if model["source"] in ("ease", "popularity") else ""), "",
             "**Protocol**: `ml_core/evaluation.py`'s chronological leave-one-out with full ranking (every item the "
             "member has not interacted with is a candidate; pessimistic ties). *Before* is the model's own top "
             f"{k}; *after* sends its best {report['n_candidates']} through the serving re-ranker "
             "(`ml_core/rerank.py`: the seed's boosts against the member's last three liked movies, MMR over the best "
             "60, the slate at temperature 0), and a held-out movie not shown counts as a miss.", "",
             "**Columns**: NDCG/HR intervals are 95% (normal approximation for NDCG, Wilson for HR). Exposure Gini is "
             f"over the whole catalogue's appearances in the group's top-{k} lists (0 = even); it rises as a group "
             f"shrinks, so *Gini, {report['min_group_users']} users* is the mean over 20 seeded draws of "
             f"{report['min_group_users']} members (comparable across groups). KLs (nats) compare the recommended "
             "slots' genre mix and train-popularity quintile mix with the group's own histories and with the "
             "catalogue (every movie once). † marks groups under "
             f"{report['min_group_users']} members (wide intervals; left out of the gaps). *vs all* says whether a "
             f"group's NDCG@{k} interval lies wholly below or above the overall mean. *p* is a permutation test "
             f"(2,000 seeded shuffles of the group labels) of the spread of per-member NDCG@{k} between the groups "
             f"of at least {report['min_group_users']} members: small p = the groups differ beyond chance.", "",
             "## Overall", "", *overall_table(report), "", "## Gaps between groups", "", *gap_lines(report), "",
             "## What the numbers say", "", *findings(report), ""]
    for name in report["attributes"]:
        image = f"img/fairness_{report['dataset']}_{name}.png"
        plot_attribute(report, name, docs / image)
        n_unknown = report["attributes"][name]["n_unknown"]
        lines += [f"## By {name}", "", *([f"{n_unknown} evaluated members have no {name}.", ""] if n_unknown else []),
                  *accuracy_table(report, name), "", *exposure_table(report, name), "",
                  f"![NDCG@{k}, HR@{k} and KL by {name}, before and after re-ranking]({image})", ""]
    lines += ["## On the site", "",
              "The same report runs nightly on the site's own ratings (Celery beat `nightly-fairness`, "
              "`recommendations/fairness.py`): imported ml-100k members are grouped by `u.user`, people who signed up "
              "are in no group, and each run is stored read-only in admin (*Fairness reports*), or recorded as "
              "\"no groups\" when no member with ratings has known demographics.", "",
              "The per-group numbers are not released through the ε-DP analytics endpoint "
              "(`GET /v1/events/recommendation-analytics`): its accountant prices event-level count queries whose "
              "sensitivity is known (one interaction moves one bucket). Here the model is fitted on the same "
              "interactions it is scored on, so one interaction can move every member's list and every group's "
              "hit count; no sensitivity bound holds, and Laplace noise scaled to 1 would promise a privacy it "
              "does not give.", ""]
    path = docs / "FAIRNESS.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def plot_attribute(report: dict[str, Any], attribute: str, path: Path) -> None:
    """Four panels per attribute: NDCG@k and HR@k with 95% intervals, genre and popularity KL vs history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    k = report["k"]
    groups = report["attributes"][attribute]["groups"]
    labels = [g["group"] + (" †" if g["small"] else "") for g in groups]
    y = np.arange(len(groups))
    panels = ((f"ndcg@{k}", f"NDCG@{k}"), (f"hr@{k}", f"HR@{k}"), ("kl_genre_history", "KL genre vs own history"),
              ("kl_popularity_history", "KL popularity vs own history"))
    fig, axes = plt.subplots(1, 4, figsize=(14, 1.2 + 0.32 * len(groups)), dpi=100, sharey=True)
    for ax, (key, title) in zip(axes, panels, strict=True):
        for offset, stage, colour in ((-0.2, "before", "#2b6cb0"), (0.2, "after", "#c05621")):
            values = np.asarray([g[stage][key] for g in groups], float)
            err = None
            if f"{key}_ci" in groups[0][stage]:
                ci = [g[stage][f"{key}_ci"] for g in groups]
                err = np.asarray([[v - (c[0] if c[0] is not None else v) for v, c in zip(values, ci, strict=True)],
                                  [(c[1] if c[1] is not None else v) - v for v, c in zip(values, ci, strict=True)]])
            ax.barh(y + offset, values, height=0.4, xerr=err, color=colour, alpha=0.85, label=f"{stage} re-ranking",
                    error_kw={"elinewidth": 0.8, "capsize": 2})
        if key in report["overall"]["before"]:
            ax.axvline(report["overall"]["before"][key], color="#2b6cb0", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{report['dataset']}: by {attribute} (dotted: all members, before)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
