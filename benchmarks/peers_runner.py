"""One RecBole fit on APEX's exported split, run inside the peers virtualenv (see benchmarks/peers.py).

    var/peers-venv/bin/python benchmarks/peers_runner.py --split DIR --model EASE --params '{...}' --out DIR

Reads the split files that benchmarks/peers.py wrote (train sequences, validation and test item per
user, in APEX's item indices), writes them as RecBole atomic files with `benchmark_filename`
(train/valid/test), fits the model with RecBole's own trainer (RecBole's early stopping on its
validation NDCG@10), and writes full score matrices in APEX's user and item order:

* valid.npy:  input = train history                 (validation target)
* test_a.npy: input = train history + validation item (APEX's protocol)
* test_b.npy: input = train history only             (the libraries' default for general models)

and result.json (fit seconds, epochs, versions, the resolved configuration). No metric is computed
here: APEX's evaluator ranks these scores. This script imports nothing from the project, so it runs
with the virtualenv's own numpy/pandas/torch; it patches nothing in site-packages.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

SEQUENTIAL = {"SASRec"}
SCORE_BATCH = 256


def read_split(directory: Path) -> dict:
    """The files benchmarks/peers.py exported: train sequences, validation and test items per user."""
    meta = json.loads((directory / "meta.json").read_text())
    n_users = meta["n_users"]
    train = np.loadtxt(directory / "train.tsv", dtype=np.int64, delimiter="\t", skiprows=1, ndmin=2)
    order = np.lexsort((train[:, 2], train[:, 0]))
    train = train[order]
    bounds = np.searchsorted(train[:, 0], np.arange(n_users + 1))
    seqs = [train[bounds[u] : bounds[u + 1], 1] for u in range(n_users)]
    out = {"meta": meta, "train_seqs": seqs}
    for stage in ("valid", "test"):
        rows = np.loadtxt(directory / f"{stage}.tsv", dtype=np.int64, delimiter="\t", skiprows=1, ndmin=2)
        item = np.full(n_users, -1, np.int64)
        item[rows[:, 0]] = rows[:, 1]
        out[f"{stage}_item"] = item
    return out


def write_atomic(split: dict, folder: Path, name: str, *, sequential: bool, max_len: int) -> None:
    """RecBole atomic files <name>.{train,valid,test}.inter in APEX's indices as tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    seqs, valid, test = split["train_seqs"], split["valid_item"], split["test_item"]
    files = {s: [] for s in ("train", "valid", "test")}
    for u, seq in enumerate(seqs):
        if sequential:
            for t in range(1, len(seq)):
                files["train"].append((u, seq[max(0, t - max_len) : t], seq[t]))
            if valid[u] >= 0 and len(seq):
                files["valid"].append((u, seq[-max_len:], valid[u]))
                if test[u] >= 0:
                    files["test"].append((u, np.append(seq, valid[u])[-max_len:], test[u]))
        else:
            files["train"].extend((u, i, t) for t, i in enumerate(seq))
            if valid[u] >= 0:
                files["valid"].append((u, valid[u], len(seq)))
            if test[u] >= 0:
                files["test"].append((u, test[u], len(seq) + 1))
    for stage, rows in files.items():
        with open(folder / f"{name}.{stage}.inter", "w") as fh:
            if sequential:
                fh.write("user_id:token\titem_id_list:token_seq\titem_id:token\n")
                fh.writelines(f"{u}\t{' '.join(map(str, h))}\t{i}\n" for u, h, i in rows)
            else:
                fh.write("user_id:token\titem_id:token\ttimestamp:float\n")
                fh.writelines(f"{u}\t{i}\t{t}\n" for u, i, t in rows)


def recbole_config(model: str, data_root: Path, name: str, params: dict, args: argparse.Namespace) -> dict:
    """The RecBole configuration: the model's own defaults, the trial's parameters, our split files."""
    sequential = model in SEQUENTIAL
    config = {
        "data_path": str(data_root), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"] if sequential
                     else ["user_id", "item_id", "timestamp"]},
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": None if sequential else "timestamp",
        "eval_args": {"mode": "full", "order": "TO", "group_by": "user"},
        "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
        "seed": args.seed, "reproducibility": True, "device": "cpu", "use_gpu": False,
        "show_progress": False, "checkpoint_dir": str(args.out / "checkpoints"), "save_dataset": False,
        "log_wandb": False, "state": "WARNING",
    }
    if sequential:
        config["train_neg_sample_args"] = None  # SASRec's default CE loss over all items
    if args.epochs is not None:
        config["epochs"] = args.epochs
    config.update(params)
    return config


def fit(args: argparse.Namespace) -> dict:
    """Fit one RecBole model on the exported split; write the score matrices; the run's record."""
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)  # RecBole 1.2.1 on pandas 2.2 / torch 2.13
    split = read_split(args.split)
    params = json.loads(args.params)
    name = "apex"
    max_len = int(params.get("MAX_ITEM_LIST_LENGTH", 50))
    write_atomic(split, args.out / "data" / name, name, sequential=args.model in SEQUENTIAL, max_len=max_len)
    config = Config(model=args.model, dataset=name,
                    config_dict=recbole_config(args.model, args.out / "data", name, params, args))
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    start = time.perf_counter()  # EASE solves in its constructor, so the fit time starts here
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    seconds = time.perf_counter() - start
    checkpoint = Path(trainer.saved_model_file)
    if checkpoint.exists():  # the epoch RecBole's early stopping kept (its trainer does not restore it)
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        model.load_other_parameter(state.get("other_parameter"))
    model.eval()
    scorer = Scorer(model, dataset, split, args.model, max_len)
    n_users = split["meta"]["n_users"]
    train_hist = split["train_seqs"]
    plus_valid = [np.append(s, v) if v >= 0 else s for s, v in zip(train_hist, split["valid_item"], strict=True)]
    with torch.no_grad():
        train_only = scorer.scores(train_hist, graph=train_hist)
        np.save(args.out / "valid.npy", train_only)  # the validation input is the train history too
        np.save(args.out / "test_b.npy", train_only)
        np.save(args.out / "test_a.npy", scorer.scores(plus_valid, graph=plus_valid))
    return {"model": args.model, "fit_seconds": round(seconds, 2), "epochs": len(getattr(trainer, "train_loss_dict", {}) or {}),
            "best_epoch_valid_recbole": {k: float(v) for k, v in (best_valid or {}).items()},
            "n_users": n_users, "params": params,
            "config": {k: _plain(config[k]) for k in sorted(config.final_config_dict)
                       if k in params or k in _REPORTED[args.model]}}


_TRAINED = ["epochs", "stopping_step", "train_batch_size", "learning_rate", "weight_decay"]
_REPORTED = {  # the resolved settings each model's row on the page lists
    "EASE": ["reg_weight"],
    "LightGCN": [*_TRAINED, "embedding_size", "n_layers", "reg_weight", "train_neg_sample_args"],
    "DiffRec": [*_TRAINED, "steps", "noise_schedule", "noise_scale", "noise_min", "noise_max", "dims_dnn",
                "embedding_size", "mean_type", "reweight", "sampling_steps", "sampling_noise"],
    "SASRec": [*_TRAINED, "MAX_ITEM_LIST_LENGTH", "n_layers", "n_heads", "hidden_size", "inner_size",
               "hidden_dropout_prob", "attn_dropout_prob", "loss_type", "train_neg_sample_args"],
}


def _plain(value):
    return value if isinstance(value, (int, float, str, bool, list, dict, type(None))) else str(value)


class Scorer:
    """Full score rows in APEX's item order for arbitrary input histories (APEX item indices)."""

    def __init__(self, model, dataset, split: dict, kind: str, max_len: int) -> None:
        n_items = split["meta"]["n_items"]
        self.model, self.kind, self.max_len = model, kind, max_len
        users = dataset.field2token_id[dataset.uid_field]
        self.user_rb = np.array([users.get(str(u), 0) for u in range(split["meta"]["n_users"])])  # 0: padding
        tokens = dataset.field2token_id[dataset.iid_field]
        self.item_rb = np.array([tokens.get(str(i), -1) for i in range(n_items)])  # APEX index -> RecBole id
        self.n_rb = dataset.item_num

    def _rows(self, histories: list[np.ndarray]):
        from scipy import sparse

        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = self.item_rb[np.concatenate(histories)] if len(rows) else np.zeros(0, np.int64)
        return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), self.n_rb))

    def scores(self, histories: list[np.ndarray], *, graph: list[np.ndarray]) -> np.ndarray:
        """(n_users, n_items) float32 scores, APEX order; NaN for items RecBole never saw."""
        rb = self._scores_rb(histories, graph)
        out = np.full((len(histories), len(self.item_rb)), np.nan, np.float32)
        known = self.item_rb > 0
        out[:, known] = rb[:, self.item_rb[known]]
        return out

    def _scores_rb(self, histories: list[np.ndarray], graph: list[np.ndarray]) -> np.ndarray:
        import torch

        m = self.model
        if self.kind == "EASE":  # the item-item weights applied to the given history rows
            return np.asarray(self._rows(histories) @ np.asarray(m.item_similarity), np.float32)
        if self.kind == "LightGCN":  # the learned embeddings propagated over the graph of the given histories
            from scipy import sparse

            inter = self._rows(graph).tocoo()
            m.interaction_matrix = sparse.coo_matrix(
                (inter.data, (self.user_rb[inter.row], inter.col)), shape=(m.n_users, self.n_rb))
            m.norm_adj_matrix = m.get_norm_adj_mat().to(m.device)
            users, items = m.forward()
            return (users[torch.as_tensor(self.user_rb)] @ items.T).numpy()
        out = []
        for start in range(0, len(histories), SCORE_BATCH):
            batch = histories[start : start + SCORE_BATCH]
            if self.kind == "DiffRec":  # the denoiser run from the given history rows, as full_sort_predict does
                x = torch.from_numpy(self._rows(batch).toarray())
                out.append(m.p_sample(x).numpy())
            else:  # sequential: the last max_len items, right-padded as RecBole feeds them
                seq = torch.zeros((len(batch), self.max_len), dtype=torch.long)
                lengths = torch.ones(len(batch), dtype=torch.long)
                for i, h in enumerate(batch):
                    ids = self.item_rb[h[-self.max_len :]]
                    if len(ids):
                        seq[i, : len(ids)] = torch.as_tensor(ids)
                        lengths[i] = len(ids)
                out.append((m.forward(seq, lengths) @ m.item_embedding.weight.T).numpy())
        return np.concatenate(out).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=Path, required=True, help="folder with meta.json, train/valid/test.tsv")
    parser.add_argument("--model", required=True, choices=["EASE", "LightGCN", "DiffRec", "SASRec"])
    parser.add_argument("--params", default="{}", help="JSON of RecBole parameters for this trial")
    parser.add_argument("--out", type=Path, required=True, help="folder for the score matrices and result.json")
    parser.add_argument("--epochs", type=int, default=None, help="override RecBole's epochs (quick runs)")
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    record = fit(args)
    record["versions"] = _versions()
    (args.out / "result.json").write_text(json.dumps(record, indent=2, sort_keys=True))


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("recbole", "torch", "numpy", "scipy", "pandas")}


if __name__ == "__main__":
    main()
