"""docs/MODEL_CARDS.md, regenerated from the run metrics (`<artifacts>/<dataset>/metrics.json`)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from .targets import POPULARITY_RATIO

log = logging.getLogger(__name__)

FULL = ("hr@10", "ndcg@10", "mrr@10")
SAMPLED = ("sampled_hr@10", "sampled_ndcg@10", "sampled_mrr@10")
BEYOND = ("coverage@10", "gini@10", "novelty@10")


def read_run(dataset_dir: Path) -> dict[str, Any]:
    """A dataset's run metrics, plus models whose artifact folder holds a full entry but the file lacks.

    Each artifact's metrics.json carries its model's full entry, so a run file clobbered by a
    concurrent command is repaired here instead of losing cards.
    """
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / "metrics.json"
    try:
        run = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        log.warning("%s: not valid JSON, rebuilt from the artifact folders", path)
        run = {}
    run.setdefault("models", {})
    blend = dataset_dir / "ensemble" / "metrics.json"
    try:  # the DR blend's weights, for the cards' verdict lines (absent until `ensemble` has run)
        run["blend_weights"] = json.loads(blend.read_text()).get("weights", {}) if blend.exists() else {}
    except json.JSONDecodeError:
        run["blend_weights"] = {}
    for saved_path in sorted(dataset_dir.glob("*/metrics.json")):
        try:
            saved = json.loads(saved_path.read_text())
        except json.JSONDecodeError:
            continue
        if saved.get("model") == saved_path.parent.name and {"test", "valid", "val_curve"} <= set(saved):
            run["models"].setdefault(saved_path.parent.name, saved)
    return run


def load_runs(artifacts_root: Path) -> list[dict[str, Any]]:
    """Every dataset's run metrics under the artifacts root, sorted by dataset name."""
    runs = []
    for path in sorted(Path(artifacts_root).glob("*/metrics.json")):
        run = read_run(path.parent)
        if run["models"] and "dataset" in run:
            runs.append(run)
    return runs


def plot_curve(entry: dict[str, Any], dataset: str, path: Path) -> None:
    """PNG of validation NDCG@10 per epoch (a single point for closed-form models)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = entry.get("val_curve") or [entry["valid"]["ndcg@10"]]
    epochs = entry.get("val_epochs") or list(range(1, len(curve) + 1))
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot(epochs[: len(curve)], curve, marker="o" if len(curve) < 3 else None, color="#2b6cb0")
    if entry.get("best_epoch"):
        ax.axvline(entry["best_epoch"], color="#c05621", linestyle="--", linewidth=1, label="selected epoch")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NDCG@10 (full)")
    ax.set_title(f"{entry['model']} on {dataset}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def plot_trials(entry: dict[str, Any], dataset: str, path: Path) -> None:
    """PNG of the tuning study: each trial's validation NDCG@10 (pruned ones at their last report), best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = entry["trials"]
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    done = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned" and t.get("last_reported") is not None]
    ax.scatter([t["number"] for t in done], [t["value"] for t in done], color="#2b6cb0", s=18, label="complete")
    if pruned:
        ax.scatter([t["number"] for t in pruned], [t["last_reported"] for t in pruned], color="#a0aec0", marker="x",
                   s=18, label="pruned (last report)")
    best, xs, ys = -1.0, [], []
    for t in sorted(done, key=lambda t: t["number"]):
        best = max(best, t["value"])
        xs.append(t["number"])
        ys.append(best)
    ax.step(xs, ys, where="post", color="#c05621", linewidth=1, label="best so far")
    ax.set_xlabel("trial (0 = default configuration)")
    ax.set_ylabel("validation NDCG@10 (full)")
    ax.set_title(f"{entry['model']} on {dataset}: {len(trials)} trials", fontsize=10)
    ax.legend(loc="best", fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _stored_at(path: str | None) -> str:
    """Where the choice is kept: the file shipped in the repository, or the run's own artifacts."""
    from .tuning import SHIPPED_DIR

    if path and Path(path).resolve().is_relative_to(SHIPPED_DIR):
        return f"stored in the repository as `{Path(path).resolve().relative_to(SHIPPED_DIR.parent.parent)}`"
    shipped = SHIPPED_DIR / Path(path).parent.parent.name / Path(path).name if path else None
    if path and shipped is not None and shipped.exists() and Path(path).exists() \
            and shipped.read_bytes() == Path(path).read_bytes():  # the run's file, copied into the repository
        return f"stored in the repository as `{shipped.relative_to(SHIPPED_DIR.parent.parent)}`"
    return "stored with the run's artifacts (`<artifacts>/<dataset>/tuned/`)"


def _tuning_lines(e: dict[str, Any], trials_img: str | None) -> list[str]:
    """How the configuration was chosen: the study (trials, pruned, time) and a table of its trials."""
    tuning, trials = e.get("tuning") or {}, e.get("trials") or []
    if tuning.get("source") != "tuned" or not trials or "state" not in trials[0]:
        return ["- Configuration: the model's defaults (no tuning study stored for this dataset; "
                "`python -m ml_core train --tune` runs one)", ""]
    states = [t["state"] for t in trials]
    wall = tuning.get("wall_seconds") or e.get("tuning_seconds", 0.0)
    lines = [f"- Configuration: chosen by tuning on {tuning.get('dataset', '?')} — {len(trials)} trials "
             f"({states.count('complete')} complete, {states.count('pruned')} pruned, {states.count('fail')} failed) "
             f"of {tuning.get('sampler', 'TPE')}, {tuning.get('pruner', 'median pruning')}; best trial "
             f"{tuning.get('best_trial', '?')} (trial 0 = the defaults). Tuning took {_duration(wall)} wall in "
             f"{len(tuning.get('sessions') or [None])} session(s), {_duration(e.get('tuning_seconds', 0.0))} of it "
             f"training and validating trials; last session {tuning.get('tuned_at', '?')}; "
             f"{_stored_at(tuning.get('path'))}", "",
             "| trial | state | validation NDCG@10 | epochs | seconds | parameters |", "|---|---|---|---|---|---|"]
    for t in trials:
        value = t["value"] if t["value"] is not None else t.get("last_reported")
        shown = "-" if value is None else (f"{value:.4f}" if t["state"] == "complete" else f"({value:.4f})")
        mark = " **best**" if t["number"] == tuning.get("best_trial") else ""
        params = ", ".join(f"`{k}={_fmt(v)}`" for k, v in sorted(t["params"].items()))
        lines.append(f"| {t['number']}{mark} | {t['state']} | {shown} | {t.get('epochs') or '-'} | "
                     f"{float(t.get('seconds') or 0.0):.1f} | {params} |")
    lines.append("")
    if trials_img:
        lines += [f"![tuning trials of {e['model']}]({trials_img})", ""]
    return lines


def _tie_lines(t: dict[str, Any]) -> list[str]:
    """The test users whose held-out event was tied with the previous one, and the metrics without them."""
    if "n_tied_users" not in t:
        return []
    n, total = t["n_tied_users"], t.get("n_users", 0)
    line = (f"- Timestamp ties: {n} of {total} test users' held-out event has the same timestamp as their "
            "validation event (which one is held out is the seeded tie-break's choice)")
    if n:
        line += (f"; without them ({total - n} users): NDCG@10 {_fmt(t.get('ndcg@10_untied', '-'))}, HR@10 "
                 f"{_fmt(t.get('hr@10_untied', '-'))}; on them: NDCG@10 {_fmt(t['ndcg@10_tied'])}, "
                 f"HR@10 {_fmt(t['hr@10_tied'])}")
    return [line]


def _verdict_lines(run: dict[str, Any], e: dict[str, Any]) -> list[str]:
    """An ensemble model's test NDCG@10 against popularity's (issue 15: at least POPULARITY_RATIO x), its blend
    weight, and where it falls short after a study, what the study saw on validation against the defaults."""
    from .blending import ENSEMBLE_MODELS

    popular = run["models"].get("popularity", {}).get("test", {}).get("ndcg@10")
    if e["model"] not in ENSEMBLE_MODELS or not popular:
        return []
    ratio = e["test"]["ndcg@10"] / popular
    met = ratio >= POPULARITY_RATIO
    line = (f"- Against popularity: {ratio:.2f} x its test NDCG@10 ({_fmt(popular)}); target >= {POPULARITY_RATIO} x "
            + ("met" if met else "**not met**"))
    weight = (run.get("blend_weights") or {}).get(e["model"])
    if weight is not None:
        line += f"; DR blend weight {weight:.3f}"
    trials = [t for t in e.get("trials") or [] if t.get("state") == "complete"]
    best = (e.get("tuning") or {}).get("best_trial")
    if not met and trials:
        values = {t["number"]: t["value"] for t in trials}
        if best in values and 0 in values and best != 0:
            line += (f". The study's choice (trial {best}) beat the defaults (trial 0) on validation, "
                     f"{values[best]:.4f} against {values[0]:.4f} over {e['valid'].get('n_users', '?')} users, and "
                     "is what `train` fits (chosen on validation, never on test); the test does not repeat that gain")
        elif best == 0:
            line += ". No trial of the study beat the defaults on validation"
    return [line]


def _dataset_lines(run: dict[str, Any]) -> list[str]:
    """What the dataset lacks or how it is shaped, and which model features fell back because of it."""
    profile = run.get("protocol", {}).get("dataset_profile") or {}
    notes = list(profile.get("notes", []))
    notes += [note for e in run["models"].values() for note in e.get("fallbacks", [])]
    if not notes:
        return []
    return ["Data and fallbacks:", "", *[f"- {note}" for note in notes], ""]


def _machine(platform: dict[str, Any]) -> str:
    """'2 CPUs', with torch's kernel instruction set when the run recorded it (results can differ between sets)."""
    text = f"{platform.get('cpus', '?')} CPUs"
    if platform.get("cpu_capability"):
        text += f" ({platform.get('cpu', '?')}, torch {platform.get('torch', '?')} kernels {platform['cpu_capability']})"
    return text


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _summary_table(run: dict[str, Any]) -> list[str]:
    head = ["model", *[f"{m} (full)" for m in FULL], "ndcg@10 (untied users)",
            *[m.replace("sampled_", "") + " (100 neg.)" for m in SAMPLED],
            *BEYOND, "train s", "params"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    models = sorted(run["models"].values(), key=lambda e: -e["test"]["ndcg@10"])
    for e in models:
        t = e["test"]
        cells = [e["model"], *[_fmt(t[m]) for m in FULL], _fmt(t.get("ndcg@10_untied", "-")),
                 *[_fmt(t[m]) for m in SAMPLED + BEYOND], f"{e['train_seconds']:.1f}",
                 f"{e['n_parameters']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _model_section(run: dict[str, Any], e: dict[str, Any], img: str, trials_img: str | None = None) -> list[str]:
    t, v = e["test"], e["valid"]
    lines = [f"### {e['model']}", ""]
    if e.get("description"):
        lines += [e["description"], ""]
    lines += ["| split | HR@10 | NDCG@10 | MRR@10 | HR@10 (100 neg.) | NDCG@10 (100 neg.) | MRR@10 (100 neg.) |",
              "|---|---|---|---|---|---|---|"]
    for label, m in (("test", t), ("validation", v)):
        lines.append(f"| {label} | " + " | ".join(_fmt(m[k]) for k in FULL + SAMPLED) + " |")
    lines += ["", f"- Beyond accuracy (test top-10): coverage {_fmt(t['coverage@10'])}, Gini of exposure "
              f"{_fmt(t['gini@10'])}, novelty {_fmt(t['novelty@10'])} bits",
              *_verdict_lines(run, e), *_tie_lines(t), *[f"- Fallback: {note}" for note in e.get("fallbacks", [])],
              f"- Training: {e['train_seconds']:.1f} s wall, {e.get('train_cpu_seconds', 0):.1f} s CPU, for the "
              f"selected configuration, validation checks included ({e['epochs']} epochs, "
              f"best epoch {e.get('best_epoch') or '-'}, {e.get('torch_threads', '?')} torch thread(s))",
              f"- Parameters: {e['n_parameters']:,}",
              "- Hyperparameters: " + ", ".join(f"`{k}={_fmt(val)}`" for k, val in sorted(e["hyperparameters"].items())),
              f"- Data snapshot (train split): `{e['data_snapshot']['sha256'][:16]}…`, "
              f"{e['data_snapshot']['n_interactions']:,} interactions; seed {e['seed']}; trained {e['trained_at']}"
              + ("; **quick smoke run, not a real result**" if e.get("quick") else "")
              + (f"; **training capped at {e['max_epochs']} epochs**" if e.get("max_epochs") else ""), "",
              *_tuning_lines(e, trials_img),
              f"![validation NDCG@10 per epoch of {e['model']}]({img})", ""]
    return lines


def render(runs: list[dict[str, Any]], docs_dir: Path, kept: dict[str, str] | None = None) -> str:
    """The Markdown text; writes one plot per model under docs_dir/img/.

    `kept` maps dataset names to sections of an earlier file (`dataset_sections`) that stay as they were unless
    `runs` has the same dataset."""
    lines = ["# Model cards", "",
             "Generated by `python -m ml_core train` (or `python manage.py train`) from the run metrics in "
             "`<artifacts>/<dataset>/metrics.json`; do not edit by hand.", "",
             "**Protocol** (`ml_core/evaluation.py`): implicit feedback, per-user chronological leave-one-out "
             "(last interaction = test, second-to-last = validation, rest = train; events with equal timestamps are ordered by a seeded hash of dataset, user and item, never "
             "by file or id order, and each card also gives the test metrics without the users whose held-out "
             "event was tied). "
             "Models train on train only, are tuned (`train --tune`: a fixed number of Optuna TPE trials per model "
             "and dataset, fixed seed, median pruning, trial 0 = the defaults; see each card; the project's own "
             "studies ship in `ml_core/tuned/<dataset>/`, so a fresh checkout trains the same configurations) and "
             "early-stopped on "
             "validation NDCG@10 (full ranking), and "
             "the selected model is reported on test with the validation item added to the user's history. "
             "Full ranking: all items except those the user interacted with before the target; ties count "
             "against the target (pessimistic); ranks are one-based. Sampled: the target against 100 uniformly "
             "sampled never-interacted items (fixed seed), for comparison with the SASRec paper only. "
             "Coverage, Gini of exposure and novelty (mean self-information, bits) are computed on the test "
             "top-10 lists. A dataset with no run under the artifacts root keeps its section from the previous "
             "file; its \"Last updated\" line says when that section was written.", ""]
    sections: dict[str, list[str]] = {ds: [text.rstrip(), ""] for ds, text in (kept or {}).items()}
    for run in runs:
        ds = run["dataset"]
        snap = run.get("data_snapshot", {})
        section = [f"## {ds}", "",
                  f"{snap.get('n_users', '?')} users, {snap.get('n_items', '?')} items, "
                  f"{snap.get('n_interactions', '?'):,} interactions; "
                  f"{run.get('protocol', {}).get('n_eval_users', '?')} test users"
                  f"{' (a seeded sample: --eval-users)' if run.get('protocol', {}).get('eval_users_sampled') else ''}"
                  ". Last updated "
                  f"{run.get('updated_at', '?')} on {_machine(run.get('platform', {}))}.", "",
                  *_dataset_lines(run), "Test metrics, sorted by full-ranking NDCG@10:", "", *_summary_table(run), ""]
        for name in sorted(run["models"], key=lambda n: -run["models"][n]["test"]["ndcg@10"]):
            e = run["models"][name]
            img = f"img/{ds}_{name}_val_ndcg.png"
            plot_curve(e, ds, docs_dir / img)
            trials_img = None
            if (e.get("tuning") or {}).get("source") == "tuned" and "state" in ((e.get("trials") or [{}])[0]):
                trials_img = f"img/{ds}_{name}_trials.png"
                plot_trials(e, ds, docs_dir / trials_img)
            section += _model_section(run, e, trials_img=trials_img, img=img)
        sections[ds] = section
    for ds in sorted(sections):
        lines += sections[ds]
    return "\n".join(lines).rstrip() + "\n"


def dataset_sections(text: str) -> dict[str, str]:
    """The `## <dataset>` sections of a MODEL_CARDS.md text, by dataset name (each with its heading)."""
    parts = re.split(r"(?m)^(?=## )", text)
    return {part.splitlines()[0][3:].strip(): part for part in parts[1:]}


def write_model_cards(artifacts_root: Path, docs_dir: Path) -> Path:
    """Regenerate docs_dir/MODEL_CARDS.md from every run under the artifacts root.

    A dataset already in the file with no run under this root keeps its section, so retraining one dataset on a
    fresh checkout does not drop the others' cards."""
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    path = docs_dir / "MODEL_CARDS.md"
    kept = dataset_sections(path.read_text()) if path.exists() else {}
    path.write_text(render(load_runs(artifacts_root), docs_dir, kept=kept))
    log.info("wrote %s", path)
    return path
