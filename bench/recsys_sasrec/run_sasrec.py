"""SASRec on MovieLens-100K as implemented by RecBole 1.2.1: the peer baseline of GREAM.

SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018; RecBole:
Zhao et al., "RecBole 2.0", CIKM 2022. This script runs inside RecBole's own isolated
environment (never the workspace lock); `bench/recsys_ml100k.py` launches it as

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 uv run --isolated --no-project --python 3.11 \
        --with recbole==1.2.1 --with 'setuptools<81' --with 'numpy<2' --with 'pandas<3' \
        --with torch==2.15.0 \
        python bench/recsys_sasrec/run_sasrec.py --out rankings.json --workdir DIR ...

It trains SASRec with RecBole's own trainer (early stopping on validation NDCG@10),
evaluates RecBole's own test metrics, then dumps for every test user the top-k items of
the full-sort scores, twice: unmasked (RecBole's sequential protocol, repeatable=True) and
with the items given by `--seen` masked (the bench passes each user's earlier items in
our split, so the masked rule is the same as for most-popular). The bench scores those lists with
`rewardkit_recsys.metrics` so that all methods share one metric code.

Output JSON: {"k", "users": {user: {"target", "history", "top", "top_history_masked"}},
"recbole_test_metrics", "recbole_best_valid_metrics", "settings", "seconds", "versions",
"data_sha256"}. "history" is RecBole's input sequence (≤ MAX_ITEM_LIST_LENGTH
most recent items, oldest first), used by the bench to check the split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import time
from importlib import metadata
from pathlib import Path

import recbole
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed


def recbole_config(args: argparse.Namespace, data_path: Path, workdir: Path) -> dict:
    """RecBole's leave-one-out (LS valid_and_test, TO, full ranking), CE loss, CPU."""
    return {
        "data_path": str(data_path),
        "checkpoint_dir": str(workdir / "saved"),
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "state": "INFO",
        "log_wandb": False,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "normalize_all": True,  # as RecBole's ml-100k.yaml (the time is not a feature)
        "MAX_ITEM_LIST_LENGTH": 20,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "repeatable": True,
        "metrics": ["Recall", "NDCG"],
        "topk": [1, 5, 10],
        "valid_metric": "NDCG@10",
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        "train_batch_size": args.batch_size,
        "eval_batch_size": 1024,
        "learning_rate": args.lr,
        "train_neg_sample_args": None,  # CE loss over the full catalogue
        "loss_type": "CE",
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": args.hidden_size,
        "inner_size": 4 * args.hidden_size,
        "hidden_dropout_prob": args.dropout,
        "attn_dropout_prob": args.dropout,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHRONO = "ml-100k-chrono"  # RecBole reads the name "ml-100k" from its own folder, always


def chronological_copy(src: Path, dst: Path) -> None:
    """Copy RecBole's ml-100k files to `dst/ml-100k-chrono/` with each timestamp replaced by its
    chronological rank (exact timestamp, then file order, as in our split). RecBole keeps
    timestamps min-max normalised in float32 (a step of about 1.1 s on ML-100K) and its rows
    are not in file order when it sorts, so interactions one second apart can swap; ranks
    0..99,999 stay distinct in float32. SASRec does not use the time as a feature, so
    only the order changes (for the users whose last two items were one second apart)."""
    (dst / CHRONO).mkdir(parents=True, exist_ok=True)
    lines = (src / "ml-100k" / "ml-100k.inter").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:]]
    col = [h.split(":")[0] for h in header.split("\t")].index("timestamp")
    order = sorted(range(len(rows)), key=lambda i: float(rows[i][col]))  # stable
    for rank, i in enumerate(order):
        rows[i][col] = str(rank)
    text = "\n".join([header, *("\t".join(r) for r in rows)]) + "\n"
    (dst / CHRONO / f"{CHRONO}.inter").write_text(text, encoding="utf-8")
    shutil.copyfile(src / "ml-100k" / "ml-100k.item", dst / CHRONO / f"{CHRONO}.item")


def read_seen(path: Path) -> dict[str, list[str]]:
    """user → the items to mask for that user (the bench's definition: every item of the
    user's sequence before its test item, in our split)."""
    seen = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(seen, dict) or not all(isinstance(v, list) for v in seen.values()):
        raise ValueError(f"{path}: expected an object of user → list of item ids")
    return seen


@torch.no_grad()
def dump_rankings(model, test_data, dataset, seen: dict[str, list[str]], k: int) -> dict:
    """Top-k of the full-sort scores for each test user, unmasked and with `seen` masked."""
    model.eval()
    uid_f, iid_f = dataset.uid_field, dataset.iid_field
    out: dict[str, dict] = {}
    for batch in test_data:
        interaction = batch[0]
        scores = model.full_sort_predict(interaction).view(-1, dataset.item_num)
        scores[:, 0] = -torch.inf  # RecBole's padding item
        users = dataset.id2token(uid_f, interaction[uid_f].numpy())
        targets = dataset.id2token(iid_f, interaction[iid_f].numpy())
        top = scores.topk(k, dim=1).indices.numpy()
        seqs = interaction[iid_f + "_list"].numpy()
        lens = interaction["item_length"].numpy()
        masked = scores.clone()
        for row, user in enumerate(users):
            if str(user) not in seen:
                raise ValueError(f"--seen has no entry for RecBole's test user {user}")
            mask = dataset.token2id(iid_f, seen[str(user)])
            masked[row, torch.as_tensor(mask, dtype=torch.long)] = -torch.inf
        top_masked = masked.topk(k, dim=1).indices.numpy()
        for row, user in enumerate(users):
            if user in out:
                raise ValueError(f"RecBole's test set has user {user} twice")
            out[str(user)] = {
                "target": str(targets[row]),
                "history": [str(t) for t in dataset.id2token(iid_f, seqs[row][: lens[row]])],
                "top": [str(t) for t in dataset.id2token(iid_f, top[row])],
                "top_history_masked": [str(t) for t in dataset.id2token(iid_f, top_masked[row])],
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workdir", type=Path, required=True, help="RecBole's logs and checkpoint")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--stopping-step", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seen", type=Path, required=True, help="JSON user → items to mask")
    p.add_argument("--keep-file-order", action="store_true", help="RecBole's files as shipped")
    args = p.parse_args()

    t0 = time.perf_counter()
    shipped = Path(recbole.__file__).parent / "dataset_example"
    inter_path = shipped / "ml-100k" / "ml-100k.inter"
    args.workdir.mkdir(parents=True, exist_ok=True)
    data_path, name = shipped, "ml-100k"
    if not args.keep_file_order:
        data_path, name = args.workdir / "data", CHRONO
        chronological_copy(shipped, data_path)
    os.chdir(args.workdir)  # RecBole writes ./log and ./log_tensorboard
    cfg = recbole_config(args, data_path, args.workdir)
    config = Config(model="SASRec", dataset=name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    log = logging.getLogger()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)
    t_data = time.perf_counter()
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    t_fit = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    rankings = dump_rankings(trainer.model, test_data, dataset, read_seen(args.seen), args.k)
    t_end = time.perf_counter()
    log.info(f"dumped top-{args.k} for {len(rankings)} test users")

    result = {
        "method": "SASRec (RecBole 1.2.1)",
        "k": args.k,
        "users": rankings,
        "recbole_test_metrics": {k: float(v) for k, v in test_result.items()},
        "recbole_best_valid_metrics": {k: float(v) for k, v in best_valid.items()},
        "settings": {k: v for k, v in cfg.items() if k not in ("data_path", "checkpoint_dir")}
        | {"model": "SASRec", "dataset": name, "data": "recbole/dataset_example/ml-100k"}
        | {"timestamps_as_chronological_ranks": not args.keep_file_order},
        "seconds": {
            "data": round(t_data - t0, 1),
            "fit": round(t_fit - t_data, 1),
            "test_and_dump": round(t_end - t_fit, 1),
            "total": round(t_end - t0, 1),
        },
        "versions": {
            name: metadata.version(name)
            for name in ("recbole", "torch", "numpy", "pandas", "scipy", "ray", "setuptools")
        },
        "torch_threads": torch.get_num_threads(),
        "data_sha256": {
            "ml-100k.inter": sha256(inter_path),
            "ml-100k.item": sha256(shipped / "ml-100k" / "ml-100k.item"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
