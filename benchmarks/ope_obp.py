"""APEX's IPS / SNIPS / DR against the Open Bandit Pipeline (obp 0.5.7) on the simulator's logged data.

    python -m ml_core simulate          # writes var/experiments/simulation/logs.npz (the served lists)
    python benchmarks/ope_obp.py        # creates var/obp-venv once, compares, writes docs/EXPERIMENTS.md's obp section

obp 0.5.7 pins torch 1.12 / scikit-learn 1.1 and Python < 3.11, so it cannot share the project's stack: the
benchmark creates its own virtual environment under var/ (the CPU torch wheel from /opt/wheels first, so nothing
pulls a CUDA build; then obp without its pins, plus the libraries its estimators import) and runs obp there on the
same arrays. Cases, in obp's standard (single-action) bandit feedback format, for several candidate policies:

* top slot: each served list's first slot is one round (action = the item, pscore = its logged propensity,
  action_dist = the candidate's Plackett-Luce first-slot distribution over the request's candidates);
* every slot: each shown slot is one round, action_dist the candidate's distribution for that slot given the
  logged items above it (the per-slot conditional that APEX's slate estimators multiply up).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VENV = ROOT / "var" / "obp-venv"
TOLERANCE = 1e-9  # relative; both sides compute in float64 from the same arrays
OBP_DEPS = ["numpy<2", "scipy", "scikit-learn", "pandas", "matplotlib<3.8", "seaborn<0.12", "tqdm", "pyyaml"]

OBP_SCRIPT = """
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
from obp.ope import DoublyRobust, InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
import obp
out = {"obp_version": obp.__version__}
with np.load(sys.argv[1]) as f:
    cases = sorted({k.split("/")[0] for k in f.files})
    for case in cases:
        a = {k.split("/")[1]: f[k] for k in f.files if k.startswith(case + "/")}
        dist, q = a["action_dist"][..., None], a["q"][..., None]
        kw = dict(reward=a["reward"], action=a["action"], action_dist=dist, pscore=a["pscore"])
        out[case] = {"IPS": float(InverseProbabilityWeighting().estimate_policy_value(**kw)),
                     "SNIPS": float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw)),
                     "DR": float(DoublyRobust().estimate_policy_value(estimated_rewards_by_reg_model=q, **kw))}
print(json.dumps(out))
"""


def venv_python(venv: Path = VENV) -> Path | None:
    """The obp venv's interpreter when obp imports there, else None."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    ok = subprocess.run([str(python), "-c", "import obp.ope"], capture_output=True).returncode == 0
    return python if ok else None


def ensure_venv(venv: Path = VENV) -> Path:
    """Create the obp venv (CPU torch first, obp without its pins, then what its estimators import)."""
    python = venv_python(venv)
    if python is not None:
        return python
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0", "--find-links", "/opt/wheels"], check=True)
    subprocess.run(pip + ["--no-deps", "--ignore-requires-python", "obp==0.5.7"], check=True)
    subprocess.run(pip + OBP_DEPS, check=True)
    python = venv_python(venv)
    if python is None:
        raise RuntimeError(f"obp does not import in {venv}")
    return python


def run_obp(python: Path, cases: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """obp's IPW / SNIPW / DR on each case's arrays, computed in the obp venv."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.npz"
        np.savez(path, **{f"{c}/{k}": v for c, arrays in cases.items() for k, v in arrays.items()})
        done = subprocess.run([str(python), "-c", OBP_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def apex_estimates(a: dict[str, np.ndarray]) -> dict[str, float]:
    """APEX's estimators on one case (ml_core.experiments.ope, one slot per round)."""
    from ml_core.experiments.ope import SlateLog, slate_dr, slate_ips, slate_snips

    rows = np.arange(len(a["action"]))
    log = SlateLog.single_action(a["pscore"], a["reward"])
    target = a["action_dist"][rows, a["action"]][:, None]
    reward_hat = a["q"][rows, a["action"]][:, None]
    direct = (a["action_dist"] * a["q"]).sum(1)
    return {"IPS": slate_ips(log, target).value, "SNIPS": slate_snips(log, target).value,
            "DR": slate_dr(log, target, reward_hat, direct).value}


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    finite = np.isfinite(logits)
    top = np.where(finite, logits, -np.inf).max(1, keepdims=True)
    e = np.where(finite, np.exp(logits - top), 0.0)
    out: np.ndarray = e / e.sum(1, keepdims=True)
    return out


def cases_from_logs(path: Path, policies: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """Bandit-format arrays for each chosen policy, from the simulator's logs.npz."""
    f = np.load(path)
    member, pos, reward, prop, valid, q, tables, temps = (f[k] for k in ("member", "positions", "reward",
                                                                            "propensity", "valid", "q", "tables",
                                                                            "temperatures"))
    names = [str(n) for n in f["names"]]
    out: dict[str, dict[str, np.ndarray]] = {}
    for p in policies:
        logits = tables[p][member] / temps[p]  # (n, C)
        label = names[p].replace(" ", "_").replace("#", "").replace("(", "").replace(")", "")
        out[f"top-slot:{label}"] = {"reward": reward[:, 0], "action": pos[:, 0], "pscore": prop[:, 0],
                                    "action_dist": _softmax_rows(logits), "q": q[member, :, 0]}
        i, j = np.nonzero(valid)
        masked = logits.copy()
        dists = np.empty((len(i), logits.shape[1]))
        n_slots = pos.shape[1]
        for slot in range(n_slots):  # the candidate's distribution for each slot given the logged items above it
            here = j == slot
            dists[here] = _softmax_rows(masked[i[here]])
            shown = np.flatnonzero(valid[:, slot])
            masked[shown, pos[shown, slot]] = -np.inf
        out[f"every-slot:{label}"] = {"reward": reward[i, j], "action": pos[i, j], "pscore": prop[i, j],
                                      "action_dist": dists, "q": q[member[i], :, j]}
    return out


def main() -> int:
    from ml_core.experiments.report import write_section

    logs = ROOT / "var" / "experiments" / "simulation" / "logs.npz"
    if not logs.exists():
        print("run `python -m ml_core simulate` first (it writes var/experiments/simulation/logs.npz)", file=sys.stderr)
        return 2
    names = [str(n) for n in np.load(logs)["names"]]
    chosen = [0] + [names.index(n) for n in ("weights #0", "weights #1", "temperature 0.1", "temperature 1")
                    if n in names]
    cases = cases_from_logs(logs, chosen)
    obp = run_obp(ensure_venv(), cases)
    rows, worst = [], 0.0
    for case, arrays in cases.items():
        ours = apex_estimates(arrays)
        for name in ("IPS", "SNIPS", "DR"):
            diff = abs(ours[name] - obp[case][name]) / max(abs(obp[case][name]), 1e-12)
            worst = max(worst, diff)
            rows.append(f"| {case} | {len(arrays['action'])} | {name} | {ours[name]:.8f} | {obp[case][name]:.8f} "
                        f"| {diff:.1e} |")
    verdict = "agree" if worst <= TOLERANCE else "DO NOT agree"
    body = "\n".join(["## Cross-check against the Open Bandit Pipeline (`python benchmarks/ope_obp.py`)", "",
                      f"obp {obp['obp_version']} (`InverseProbabilityWeighting`, "
                      "`SelfNormalizedInverseProbabilityWeighting`, `DoublyRobust`, default settings) in its own "
                      "venv under var/, on the simulator's logged lists in obp's single-action format: the first "
                      "slot of every list, and every shown slot with the candidate's distribution given the "
                      "logged items above it; estimated rewards from the simulator's cross-fitted reward model. "
                      f"APEX's `ml_core.experiments.ope` and obp {verdict} to a relative {worst:.1e} "
                      f"(tolerance {TOLERANCE:g}).", "",
                      "| case | rounds | estimator | APEX | obp | relative difference |", "|---|---|---|---|---|---|",
                      *rows])
    write_section(ROOT / "docs" / "EXPERIMENTS.md", "obp", body)
    out = ROOT / "var" / "experiments" / "obp"
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps({"worst_relative": worst, "obp": obp}, indent=2))
    print(f"APEX vs obp: worst relative difference {worst:.2e} ({verdict})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
