"""docs/EXPERIMENTS.md: the simulator's section (tables and plots) and the obp cross-check's section, each replaced
by its own command (``python -m ml_core simulate``, ``python benchmarks/ope_obp.py``) and kept by the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .ope import ESTIMATORS

HEADER = ("# Experiments: off-policy estimates and online tests, checked against a simulated truth\n\n"
          "What `ml_core/experiments/` computes, scored where the right answer is known. Each section below is "
          "rewritten by the command it names.\n\n"
          "- `stats.py`: per-arm means with Wilson/normal intervals, the always-valid mSPRT (p-value and confidence "
          "sequence, `msprt_monitor` for continuous monitoring), sample-ratio mismatch (chi-square), the guardrail "
          "(stop an arm whose always-valid upper bound on arm - control is below -bound), Thompson allocation "
          "with a floor per arm and CUPED (`cuped_arms`, a pre-experiment covariate per member). The "
          "`experiments` app computes every number on its admin page with these.\n"
          "- `ope.py`: IPS, SNIPS, DM, DR, DR-clip and switch-DR for served slates with the per-slot propensities "
          "APEX logs (prefix weights); `ml_core.ranking.doubly_robust`, which picks the ensemble weights at build "
          "time, is its one-slot case.\n"
          "- `ml_core/serving/policy.py` (inside the serving package, behind its public names): a candidate weight "
          "set's or temperature's slate distribution on a logged request, by the serving pipeline's own steps "
          "(retrieval, blend, gating, boosts, MMR, Plackett-Luce).\n"
          "- `selection.py`: `select_weights_from_logs`, the nightly `weights` step "
          "(`recommendations/weights_from_logs.py`): served lists of the last week outside experiment arms, the "
          "served weights and 50 Dirichlet candidates scored by slate DR; a candidate replaces the served weights "
          "only when its DR lower bound beats their DR value (PipelineRun and the EnsembleWeights row, source "
          "`ope`, record the reason).\n")
ORDER = ("simulation", "obp")


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or add) the section ``name`` of ``path``, between ``<!-- experiments:name -->`` markers."""
    sections: dict[str, str] = {}
    if path.exists():
        for chunk in path.read_text().split("<!-- experiments:")[1:]:
            key, _, rest = chunk.partition(" -->\n")
            if not key.startswith("/"):
                sections[key] = rest.split(f"<!-- /experiments:{key} -->")[0]
    sections[name] = body
    keys = [k for k in ORDER if k in sections] + sorted(k for k in sections if k not in ORDER)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "\n".join(f"<!-- experiments:{k} -->\n{sections[k].rstrip()}\n"
                                              f"<!-- /experiments:{k} -->\n" for k in keys))


def _plots(report: dict[str, Any], img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    rows = report["ope"]["policies"]
    truth = np.asarray([r["truth"] for r in rows])
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5), sharex=True)
    lo, hi = float(truth.min()), float(truth.max())
    pad = 0.15 * (hi - lo + 1e-9)
    for ax, name in zip(axes.ravel(), ESTIMATORS, strict=True):
        v = np.asarray([r[name]["value"] for r in rows])
        err = np.vstack([v - [r[name]["low"] for r in rows], [r[name]["high"] for r in rows] - v])
        ax.errorbar(truth, v, yerr=np.clip(err, 0, None), fmt="o", ms=3, alpha=0.7, lw=0.8)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        s = report["ope"]["summary"][name]
        ax.set_title(f"{name}: MAE {s['mae']:.3f}, Spearman {s['spearman']:.2f}", fontsize=10)
        ax.set_ylim(lo - 4 * pad, hi + 4 * pad)
    for ax in axes[-1]:
        ax.set_xlabel("true value (expected clicks per list)")
    for ax in axes[:, 0]:
        ax.set_ylabel("estimate (95% CI)")
    fig.tight_layout()
    fig.savefig(img / "experiments_ope.png", dpi=110)
    plt.close(fig)

    ab = report["ab"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = [r["lists_per_arm"] for r in ab["rows"]]
    for unit, colour in (("member", "C0"), ("member+CUPED", "C2"), ("list", "C1")):
        ax.plot(sizes, [r[unit]["correct"] for r in ab["rows"]], "o-", color=colour,
                label=f"{unit}: declared the better arm")
        ax.plot(sizes, [r[unit]["aa_false_positive"] for r in ab["rows"]], "x--", color=colour,
                label=f"{unit}: A/A twin declared a difference")
    ax.axhline(0.95, color="k", lw=0.7, ls=":")
    ax.axhline(0.05, color="k", lw=0.7, ls=":")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("lists per arm (horizon N)")
    ax.set_ylabel(f"share of {ab['runs']} seeded runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img / "experiments_ab.png", dpi=110)
    plt.close(fig)

    ts = report["thompson"]
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.asarray(ts["lists"])
    for s in ("uniform", "thompson"):
        ax.plot(x, ts["regret_mean"][s], label=f"{s} (mean of {ts['runs']} runs)")
        ax.fill_between(x, ts["regret_p10"][s], ts["regret_p90"][s], alpha=0.2)
    ax.set_xlabel("lists served")
    ax.set_ylabel("cumulative regret (expected clicks)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img / "experiments_regret.png", dpi=110)
    plt.close(fig)
    return ["img/experiments_ope.png", "img/experiments_ab.png", "img/experiments_regret.png"]


def _ope_lines(report: dict[str, Any]) -> list[str]:
    ope, cfg = report["ope"], report["config"]
    t = ope["targets"]
    lines = ["## 1. Off-policy estimates against the true values", "",
             f"{ope['n_lists']} logged lists ({cfg['requests_per_member']} per member, logging temperature "
             f"{cfg['log_temperature']}), mean {ope['mean_clicks_logged']:.3f} clicks per list. "
             f"{ope['n_policies']} policies: the logging policy, {cfg['n_weight_sets']} weight sets from the "
             "ensemble's Dirichlet sampler (`ml_core.ranking.dirichlet_weights`) and the bundle's weights at "
             "other temperatures. Value = expected clicks per list of 10. Reward model for DM/DR: logistic "
             "regression of a click on the bundle's normalised model scores, the lite score, log-popularity and "
             "the slot, cross-fitted on two member folds. DR-clip clips the prefix weights at 20; switch-DR "
             "drops the correction where they exceed 20.", "",
             f"The policy code reproduces the engine's logged propensities to {ope['propensity_check']:.1e} "
             "(the largest difference over every logged slot; the engine rounds to 6 decimals).", "",
             "| estimator | MAE | RMSE | max abs error | bias | Spearman with truth | 95% CI coverage |",
             "|---|---|---|---|---|---|---|"]
    for name in ESTIMATORS:
        s = ope["summary"][name]
        lines.append(f"| {name} | {s['mae']:.4f} | {s['rmse']:.4f} | {s['max_abs']:.4f} | {s['bias']:+.4f} "
                     f"| {s['spearman']:.3f} | {s['coverage']:.2f} |")
    ratio_ok = t["dr_mae_over_ips_mae"] <= 0.5
    rank_ok = t["dr_spearman"] >= 0.9
    lines += ["", f"Targets: DR error / IPS error = {t['dr_mae_over_ips_mae']:.3f} (target <= 0.5: "
              f"{'met' if ratio_ok else 'NOT met'}); Spearman of DR with the truth = {t['dr_spearman']:.3f} "
              f"(target >= 0.9: {'met' if rank_ok else 'NOT met'}).", "",
              "Why IPS is low for most weight sets: a weight set's MMR pool holds items the logging pool never "
              "held, so those slates get weight 0 (no support) and IPS counts their clicks as 0; SNIPS, DM and DR "
              "are far less hurt. The intervals are normal approximations of sampling noise only; they do not "
              "cover that support bias, which is why their coverage is under 95%.", "",
              f"DR's lead over IPS comes mostly from that support problem; over SNIPS and DM it is small (MAE "
              f"{ope['summary']['DR']['mae']:.3f} against {ope['summary']['SNIPS']['mae']:.3f} and "
              f"{ope['summary']['DM']['mae']:.3f}). The click model was fixed before any result and not tuned; its "
              f"rate ({ope['mean_clicks_logged']:.2f} clicks per list of {cfg['k']}) is far above a real site's, "
              "which gives every estimator more signal than production logs will.", "",
              "![estimates against truth](img/experiments_ope.png)", "",
              "The same policies and true values on independent logs (the same members and lists per member; new "
              "draws of the served slates and clicks, a new reward model):", "",
              "| logs | IPS MAE | SNIPS MAE | DM MAE | DR MAE | DR-clip MAE | switch-DR MAE | DR / IPS | "
              "DR Spearman | targets |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report.get("ope_repeats", []):
        lines.append(f"| seed {r['log_seed']} | " + " | ".join(f"{r[f'{n}_mae']:.4f}" for n in ESTIMATORS)
                     + f" | {r['dr_mae_over_ips_mae']:.3f} | {r['dr_spearman']:.3f} | "
                     f"{'met' if r['met'] else 'NOT met'} |")
    lines += ["", "<details><summary>Every policy (logs seed 0)</summary>",
              "", "| policy | truth | IPS | SNIPS | DM | DR | DR-clip | switch-DR |", "|---|---|---|---|---|---|---|---|"]
    for r in ope["policies"]:
        lines.append(f"| {r['policy']} (T {r['temperature']:g}) | {r['truth']:.4f} | "
                     + " | ".join(f"{r[n]['value']:.4f}" for n in ESTIMATORS) + " |")
    return lines + ["", "</details>", ""]


def _ab_lines(ab: dict[str, Any]) -> list[str]:
    last = ab["rows"][-1]
    lines = ["## 2. A/B runs with the always-valid test", "",
             f"Control: {ab['control']} (true value {ab['truth_control']:.4f}); treatment: {ab['treatment']}, the "
             f"candidate with the best DR estimate ({ab['dr_treatment']:.4f}; true value "
             f"{ab['truth_treatment']:.4f}). Truly better: **{ab['better']}**. The {ab['n_members']} members are "
             "split 50/50 by hash(experiment, member) (a new split each run); metric clicks per list; the mSPRT "
             f"(`stats.msprt_monitor`, normal mixture, alpha 0.05) is looked at every {ab['look_every']} lists per "
             f"arm and its first rejection decides. {ab['runs']} seeded runs, each with an A/A twin (the same split, "
             "the control policy on both sides) whose every rejection is a false positive.", "",
             "Three analyses of the same runs. **member**: one value per member, their clicks per list so far "
             "(what the `experiments` app computes; members are what was randomised). **member+CUPED**: the same, "
             f"less theta times each member's clicks per list in a pre-experiment period of {ab['pre_lists']} lists "
             "from the control policy (`stats.cuped_arms`). **list**: every list an independent unit — wrong here, "
             "shown to say why.", "",
             "| lists per arm | analysis | declared the better arm | declared the worse arm | undecided | "
             "A/A twin declared a difference | sign of the difference right |", "|---|---|---|---|---|---|---|"]
    for r in ab["rows"]:
        for unit in ("member", "member+CUPED", "list"):
            u = r[unit]
            lines.append(f"| {r['lists_per_arm']} | {unit} | {u['correct']:.3f} | {u['wrong']:.3f} | "
                         f"{u['undecided']:.3f} | {u['aa_false_positive']:.3f} | {u['sign_correct']:.3f} |")
    lines.append("")
    for unit in ("member", "member+CUPED"):
        enough = [r["lists_per_arm"] for r in ab["rows"] if r[unit]["correct"] >= 0.95]
        stop = ab["median_stop"][unit]
        lines.append(f"- {unit}: " + (f"names the truly better arm in >= 95% of runs from {min(enough)} lists per "
                                      "arm on" if enough else
                                      f"target NOT met — at {last['lists_per_arm']} lists per arm it names the "
                                      f"better arm in {last[unit]['correct']:.1%} of runs "
                                      f"({last[unit]['undecided']:.1%} undecided, {last[unit]['wrong']:.1%} wrong)")
                     + (f"; median decision at {stop:.0f} lists per arm" if stop else "")
                     + f"; A/A false positives up to {max(r[unit]['aa_false_positive'] for r in ab['rows']):.1%}.")
    return lines + ["",
                    "Why lists are the wrong unit: the split fixes which members (and how engaged they are) each arm "
                    "serves, and that difference does not shrink with more lists of the same members. Treating "
                    "lists as independent ignores it: the list-level A/A twins declared a difference in up to "
                    f"{max(r['list']['aa_false_positive'] for r in ab['rows']):.0%} of runs against alpha 5%. "
                    "The member-level test pays for the same noise in power: with few members it is bounded by "
                    "the between-member spread, not by the number of lists; CUPED removes the part of that spread "
                    "the members' own pre-experiment behaviour explains.", "",
                    "![A/B accuracy](img/experiments_ab.png)", ""]


def write_simulation_report(report: dict[str, Any], docs: Path) -> None:
    """The simulation section of docs/EXPERIMENTS.md, with its three plots under docs/img/."""
    _plots(report, docs / "img")
    cfg, ab, ts = report["config"], report["ab"], report["thompson"]
    lines = ["## The simulation (`python -m ml_core simulate`)", "",
             f"Produced by `python -m ml_core simulate` at {report['created_at']} in {report['seconds']:.0f} s "
             f"(seed {cfg['seed']}). The world is described in `ml_core/experiments/simulate.py`: true preferences "
             f"from EASE fitted on all of {cfg['dataset']} (movies with >= {cfg['min_item_ratings']} ratings); the "
             f"serving bundle ({', '.join(cfg['models'])}; weights "
             + ", ".join(f"{k} {v:.3f}" for k, v in report["bundle_weights"].items())
             + f") built from the ratings before the {cfg['cut_quantile']:.0%} time quantile only; "
             f"{report['n_members']} members request lists from the real `Engine`; clicks by a position-based model "
             f"(exam_j = 1/log2(j+2), attraction sigmoid({cfg['attract_slope']} z {cfg['attract_offset']:+})).", ""]
    lines += _ope_lines(report)
    lines += _ab_lines(ab)
    lines += ["## 3. Thompson allocation against a uniform split", "",
              "Arms: " + "; ".join(f"{a} ({v:.4f})" for a, v in zip(ts["arms"], ts["truths"], strict=True))
              + f". Batches of {ts['batch']} lists; Thompson (`stats.thompson_allocation`, normal posteriors on "
              f"members' clicks per list, floor {ts['floor']} per arm) re-allocates after each batch; as in the "
              "`experiments` app, each member keeps a hashed position in [0, 1) and the arms own intervals as wide "
              "as their shares, so a member changes arm only where the intervals moved. "
              f"{ts['runs']} seeded runs.", "",
              "| allocation | cumulative regret after "
              f"{ts['lists'][-1]} lists | share of the best arm in the last batch |", "|---|---|---|"]
    lines += [f"| {s} | {ts['final_regret'][s]:.1f} | {ts['final_best_share'][s]:.2f} |" for s in ("uniform", "thompson")]
    lower = ts["final_regret"]["thompson"] < ts["final_regret"]["uniform"]
    lines += ["", f"Thompson's regret is {'lower' if lower else 'NOT lower'} than the uniform split's "
              f"({ts['final_regret']['thompson']:.1f} vs {ts['final_regret']['uniform']:.1f}).", "",
              "![regret](img/experiments_regret.png)", ""]
    write_section(docs / "EXPERIMENTS.md", "simulation", "\n".join(lines))
