"""Baselines for GREAM on MovieLens-100K: most-popular, RecBole's SASRec, and ours.

GREAM: "Generative Reasoning Recommendation via LLMs" (arXiv 2510.20815), spec §5: same
chronological leave-one-out split (`rewardkit_recsys.movielens`, histories ≤ 20), same
metric code (`rewardkit_recsys.metrics`: Recall@K = Hit@K, NDCG@K, K ∈ {1, 5, 10}, full
ranking over the 1,682 items), one run:

* most-popular: items ranked by their count in the training interactions only (each user's
  sequence without its validation and test items); ties broken by the numeric item id.
* SASRec (Kang & McAuley, ICDM 2018) as implemented by RecBole 1.2.1, trained and run in
  RecBole's own isolated environment by `bench/recsys_sasrec/run_sasrec.py` (RecBole's
  leave-one-out, MAX_ITEM_LIST_LENGTH 20, timestamps given as chronological ranks so that
  its order is ours), which dumps each test user's top-10 of the full-sort scores; the lists
  are scored here. RecBole's own test metrics are kept beside ours, and the split is
  checked user by user (test target and input history).
* ours: `rewardkit train --config configs/recsys/ml100k.yaml` (after alignment, after
  SRPO), read from its `results.json`, evaluated on its first `eval_users` test users;
  the baselines are also reported on that same subset.

Rule on seen items (the same for every method in the main table): items the user has
already interacted with are NOT removed from the ranking. RecBole forces this for
sequential models (`repeatable: True`), and ours ranks all valid IDs. ML-100K has no
repeated (user, item) pair, so a seen item is always a miss; the table with seen items
masked (the user's whole earlier sequence) is given too for most-popular and SASRec.

Run:  uv run --no-sync python bench/recsys_ml100k.py [--ours-results PATH | --skip-ours]
      (OMP_NUM_THREADS=1 on a shared machine; SASRec takes about 40 min on one CPU thread)
Writes bench/results/recsys_ml100k.json and .md (see the .md for the measured times).
`--sasrec-keep PATH` keeps SASRec's dump (and its log); `--sasrec-rankings PATH` re-scores
such a dump without retraining, e.g. to add ours later.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from rewardkit_recsys.metrics import DEFAULT_KS, recall_ndcg
from rewardkit_recsys.movielens import (
    Example,
    leave_one_out,
    load_interactions,
    load_items,
    user_sequences,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SASREC_SCRIPT = ROOT / "bench" / "recsys_sasrec" / "run_sasrec.py"
# RecBole's own environment, never the workspace lock. recbole 1.2.1 needs numpy < 2
# (it sets np.float = np.float_), ray 2.6.3 imports pkg_resources (setuptools < 81; torch
# 2.15 needs >= 77), pandas 3 turns its in-place fillna into a no-op; torch is the
# workspace's version so that uv's cache has it.
SASREC_ENV = [
    "uv", "run", "--isolated", "--no-project", "--python", "3.11",
    "--with", "recbole==1.2.1", "--with", "setuptools<81", "--with", "numpy<2",
    "--with", "pandas<3", "--with", "torch==2.15.0",
]  # fmt: skip


# ---------------------------------------------------------------------------- most-popular
def train_popularity(sequences: dict[str, list[str]]) -> Counter[str]:
    """Item counts over the training interactions: each user's sequence without its last
    two items (validation and test targets)."""
    counts: Counter[str] = Counter()
    for user, seq in sequences.items():
        if len(seq) < 3:
            raise ValueError(f"user {user!r} has {len(seq)} interactions; need at least 3")
        counts.update(seq[:-2])
    return counts


def _id_key(item: str) -> tuple[int, int | str]:
    return (0, int(item)) if item.isdigit() else (1, item)


def popularity_order(counts: Counter[str], catalogue: Sequence[str]) -> list[str]:
    """The whole catalogue by training count, descending; ties by the numeric item id."""
    unknown = sorted(set(counts) - set(catalogue))
    if unknown:
        raise ValueError(f"counted items missing from the catalogue: {unknown[:5]}")
    return sorted(catalogue, key=lambda i: (-counts[i], _id_key(i)))


def most_popular_rankings(
    order: Sequence[str], seen: Sequence[set[str]], k: int, exclude_seen: bool
) -> list[list[str]]:
    """Top-k of the popularity order per user, skipping the user's seen items if asked."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = []
    for user_seen in seen:
        ranking = []
        for item in order:
            if exclude_seen and item in user_seen:
                continue
            ranking.append(item)
            if len(ranking) == k:
                break
        out.append(ranking)
    return out


# ----------------------------------------------------------------------- SASRec rankings
def _load_json(path: Path, what: str):
    """The parsed JSON file, or a ValueError naming the file and what is wrong."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def read_rankings(path: Path | str, k: int) -> dict:
    """The SASRec script's JSON, validated: every user has a string target, a history
    list and two lists of k distinct item ids ("top", "top_history_masked")."""
    path = Path(path)
    data = _load_json(path, "rankings")
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise ValueError(f"{path}: expected an object with a 'users' object")
    if not data["users"]:
        raise ValueError(f"{path}: 'users' is empty")
    for user, entry in data["users"].items():
        where = f"{path}: user {user!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
        if not isinstance(entry.get("target"), str):
            raise ValueError(f"{where}: 'target' must be an item id string")
        history = entry.get("history")
        if not isinstance(history, list) or not all(isinstance(i, str) for i in history):
            raise ValueError(f"{where}: 'history' must be a list of item id strings")
        for field in ("top", "top_history_masked"):
            top = entry.get(field)
            if not isinstance(top, list) or not all(isinstance(i, str) for i in top):
                raise ValueError(f"{where}: {field!r} must be a list of item id strings")
            if len(top) != k:
                raise ValueError(f"{where}: {field!r} has {len(top)} items, expected {k}")
            if len(set(top)) != k:
                raise ValueError(f"{where}: {field!r} lists an item more than once")
    return data


def split_agreement(
    test: Sequence[Example], users: dict[str, dict], times: dict[tuple[str, str], float]
) -> dict:
    """How many of our test users have RecBole's test target (and input history) too.
    For each user that differs, both items' timestamps and whether they tie as RecBole
    stores them: min-max normalised over the file (ml-100k's `normalize_all`) and then
    float32, a step of about 1.1 s near the end of ML-100K's 18.6e6 s span; its stable sort
    then falls back to its internal row order, which is not the file's."""
    t_min, t_max = min(times.values()), max(times.values())

    def as_recbole(t: float) -> np.float32:
        return np.float32((t - t_min) / (t_max - t_min)) if t_max > t_min else np.float32(1)

    missing = [ex.user for ex in test if ex.user not in users]
    extra = sorted(set(users) - {ex.user for ex in test})
    same_target = [ex for ex in test if ex.user in users and users[ex.user]["target"] == ex.target]
    same_history = [
        ex for ex in test if ex.user in users and users[ex.user]["history"] == list(ex.history)
    ]
    differ = []
    for ex in test:
        theirs = users.get(ex.user, {}).get("target")
        if theirs is None or theirs == ex.target:
            continue
        t_ours, t_theirs = times.get((ex.user, ex.target)), times.get((ex.user, theirs))
        tie = None if t_theirs is None else bool(as_recbole(t_ours) == as_recbole(t_theirs))
        differ.append(
            {"user": ex.user, "ours": ex.target, "recbole": theirs, "ours_time": t_ours}
            | {"recbole_time": t_theirs, "float32_tie": tie}
        )
    return {
        "users": len(test),
        "same_test_target": len(same_target),
        "same_test_history": len(same_history),
        "missing_in_recbole": missing,
        "extra_in_recbole": extra,
        "target_differs": differ,
    }


def score_rankings(
    rankings: dict[str, list[str]], test: Sequence[Example], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """rewardkit_recsys.metrics over our test users, against OUR test targets."""
    missing = [ex.user for ex in test if ex.user not in rankings]
    if missing:
        raise ValueError(f"no ranking for {len(missing)} test users, e.g. {missing[:5]}")
    return recall_ndcg([rankings[ex.user] for ex in test], [ex.target for ex in test], ks)


def run_sasrec(
    args: argparse.Namespace, workdir: Path, seen: dict[str, set[str]]
) -> tuple[dict, list[str], float]:
    """Train and dump SASRec in RecBole's environment; (rankings JSON, epoch log, seconds).
    `seen` (user → earlier items) is what the script masks in its second top-k list."""
    out = workdir / "sasrec_rankings.json"
    seen_path = workdir / "seen.json"
    seen_path.write_text(json.dumps({u: sorted(items) for u, items in seen.items()}))
    cmd = SASREC_ENV + [
        "python", "-W", "ignore", str(SASREC_SCRIPT), "--out", str(out),
        "--workdir", str(workdir / "recbole"), "--epochs", str(args.sasrec_epochs),
        "--stopping-step", str(args.sasrec_stopping_step),
        "--batch-size", str(args.sasrec_batch_size), "--k", str(args.k),
        "--seen", str(seen_path),
    ]  # fmt: skip
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    print("[sasrec] " + shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).splitlines()
    if proc.returncode != 0:
        tail = "\n".join(log[-40:])
        raise RuntimeError(f"SASRec run failed (exit {proc.returncode}):\n{tail}")
    epochs = [line.strip() for line in log if " epoch " in line or "valid result" in line]
    if args.sasrec_keep:
        args.sasrec_keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, args.sasrec_keep)
        (args.sasrec_keep.with_suffix(".log")).write_text("\n".join(log))
    return read_rankings(out, args.k), epochs, seconds


EPOCH_TRAIN = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s, train loss: ([\d.]+)\]")
EPOCH_VALID = re.compile(r"epoch (\d+) evaluating \[time: [\d.]+s, valid_score: ([\d.]+)\]")


def epoch_summary(log: Sequence[str]) -> list[dict]:
    """Per-epoch training seconds, loss and validation score from RecBole's log lines."""
    epochs: dict[int, dict] = {}
    for line in log:
        if m := EPOCH_TRAIN.search(line):
            epochs.setdefault(int(m[1]), {})
            epochs[int(m[1])] |= {"train_seconds": float(m[2]), "train_loss": float(m[3])}
        elif m := EPOCH_VALID.search(line):
            epochs.setdefault(int(m[1]), {})["valid_ndcg@10"] = float(m[2])
    return [{"epoch": e} | epochs[e] for e in sorted(epochs)]


# ---------------------------------------------------------------------------------- ours
def read_ours(path: Path | str) -> dict:
    """`results.json` of `rewardkit train` on the recsys config: flat metric dicts
    "after_alignment" and (once SRPO ran) "after_srpo", e.g. {"direct/recall@10": ...},
    "eval_users" (the first N test users) and optionally "reasoning_eval_users" (the first
    M test users evaluated in reasoning mode)."""
    path = Path(path)
    data = _load_json(path, "results")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    for stage in ("after_alignment", "after_srpo"):
        metrics = data.get(stage)
        if stage == "after_srpo" and metrics is None:
            continue  # a run stopped before SRPO: reported as missing
        if not isinstance(metrics, dict) or not metrics:
            raise ValueError(f"{path}: {stage!r} must be a non-empty object of metrics")
    for key in ("eval_users", "reasoning_eval_users"):
        users = data.get(key)
        if key == "reasoning_eval_users" and users is None:
            continue
        if not isinstance(users, int) or isinstance(users, bool) or users < 1:
            raise ValueError(f"{path}: {key!r} must be a positive int, got {users!r}")
    return data


def run_ours(config: Path) -> tuple[Path, float]:
    """Train GREAM with the core CLI; returns (results.json path, seconds)."""
    output_dir = yaml.safe_load(config.read_text()).get("output_dir")
    if not output_dir:
        raise ValueError(f"{config}: no output_dir, so no results.json to read")
    cmd = ["uv", "run", "--no-sync", "--package", "rewardkit-recsys", "rewardkit", "train"]
    cmd += ["--config", str(config)]
    print("[ours] " + shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    return ROOT / output_dir / "results.json", time.perf_counter() - t0


def ours_rows(data: dict) -> dict[int, dict[str, dict[str, float]]]:
    """Rows of ours grouped by how many (first) test users they were evaluated on:
    {N: {"ours direct (after SRPO)": {"recall@10": ...}, ...}}. Reasoning-mode metrics use
    "reasoning_eval_users" when the file has it, every other mode "eval_users"."""
    groups: dict[int, dict[str, dict[str, float]]] = {}
    for stage, label in (("after_alignment", "after alignment"), ("after_srpo", "after SRPO")):
        for name, value in (data.get(stage) or {}).items():
            mode, _, metric = name.partition("/")
            if metric.split("@")[0] not in ("recall", "ndcg") or not isinstance(value, int | float):
                continue
            n = data["eval_users"]
            if mode == "reasoning":
                n = data.get("reasoning_eval_users") or n
            row = groups.setdefault(n, {}).setdefault(f"ours {mode} ({label})", {})
            row[metric] = float(value)
    return groups


# ------------------------------------------------------------------------------- report
def table(rows: dict[str, dict[str, float]], ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    cols = [f"{m}@{k}" for m in ("recall", "ndcg") for k in ks]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, m in rows.items():
        cells = [f"{m[c]:.4f}" if c in m else "–" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def sasrec_lines(s: dict, agree: dict) -> list[str]:
    """The SASRec section of the report: settings, epochs, RecBole's own metrics, split."""
    cfg, sec = s["settings"], s["seconds"]
    best = max(s["epochs"], key=lambda e: e.get("valid_ndcg@10", -1.0), default=None)
    lines = [
        "## SASRec (RecBole 1.2.1)",
        "",
        f"Environment: `{s.get('env_command', '')}`, with "
        + ", ".join(f"{k} {v}" for k, v in s["versions"].items())
        + f"; {s['torch_threads']} torch thread(s), CPU.",
        "",
        f"Settings: {cfg['n_layers']} layers, {cfg['n_heads']} heads, hidden "
        f"{cfg['hidden_size']}, dropout {cfg['hidden_dropout_prob']}, CE loss over all items, "
        f"Adam lr {cfg['learning_rate']}, batch {cfg['train_batch_size']}, "
        f"MAX_ITEM_LIST_LENGTH {cfg['MAX_ITEM_LIST_LENGTH']}, at most {cfg['epochs']} epochs, "
        f"early stopping after {cfg['stopping_step']} epochs without a better validation "
        f"NDCG@10 (the best checkpoint is reloaded for test), seed {cfg['seed']}; "
        f"split `{json.dumps(cfg['eval_args'])}`.",
        "",
    ]
    if cfg.get("timestamps_as_chronological_ranks"):
        lines += [
            "Data: RecBole's shipped ml-100k files (same SHA-256 as ours), loaded under the "
            "name `ml-100k-chrono` with each timestamp replaced by its chronological rank "
            "(exact time, then file order). As shipped, RecBole keeps the min-max-normalised "
            "time in float32 (steps of about 1.1 s): in a run on the files as shipped, 4 users "
            "whose last two items are one second apart got the other test item, with our test "
            "target as the last item of the model's input (939/943 targets agreed). "
            "SASRec does not use the time as a feature; only that order changes.",
            "",
        ]
    lines += [
        f"Epochs run: {len(s['epochs'])}"
        + (
            f", best validation NDCG@10 {best['valid_ndcg@10']:.4f} at epoch {best['epoch']}"
            if best
            else ""
        )
        + f". Seconds inside the script: data {sec['data']}, training {sec['fit']}, "
        f"test + dump {sec['test_and_dump']}, total {sec['total']}.",
        "",
        "| epoch | train s | train loss | valid NDCG@10 |",
        "|---:|---:|---:|---:|",
        *(
            f"| {e['epoch']} | {e.get('train_seconds', '–')} | {e.get('train_loss', '–')} "
            f"| {e.get('valid_ndcg@10', '–')} |"
            for e in s["epochs"]
        ),
        "",
        "RecBole's own test metrics (its evaluator, its targets): "
        + ", ".join(f"{k} {v:.4f}" for k, v in s["recbole_test_metrics"].items())
        + ".",
        "",
        f"Split agreement: RecBole's test target equals ours for {agree['same_test_target']}"
        f"/{agree['users']} users, its input history (≤ 20 items) for "
        f"{agree['same_test_history']}/{agree['users']}; users missing in RecBole: "
        f"{len(agree['missing_in_recbole'])}.",
    ]
    ties = [d for d in agree["target_differs"] if d["float32_tie"]]
    if agree["target_differs"]:
        lines += [
            f"Of the {len(agree['target_differs'])} users that differ, {len(ties)} have their "
            "last two interactions at timestamps that tie as RecBole stores them (min-max "
            "normalised, then float32: a step of about 1.1 s here), so its stable sort falls "
            "back to its row order; ours sorts the exact timestamps. The SASRec rows above are scored "
            "against our targets: "
            + ", ".join(
                f"user {d['user']} (ours {d['ours']} at {d['ours_time']:.0f}, "
                f"RecBole {d['recbole']} at {d['recbole_time']:.0f})"
                for d in agree["target_differs"]
            )
            + ".",
        ]
    return lines + [""]


def write_markdown(res: dict, path: Path) -> None:
    lines = [
        "# GREAM baselines on MovieLens-100K (`bench/recsys_ml100k.py`)",
        "",
        f"Command: `{res['command']}` (raw numbers in `recsys_ml100k.json`).",
        "",
        "Split: chronological leave-one-out of `rewardkit_recsys.movielens` (last item = test,",
        "second to last = validation, histories ≤ 20), 943 test users. Metrics:",
        "`rewardkit_recsys.metrics` for every row, full ranking over the 1,682 items.",
        "Most-popular counts the training interactions only (each user's sequence without its",
        "validation and test items), ties by numeric item id. Seen items are NOT removed from",
        "the rankings in the main tables (RecBole's sequential protocol, `repeatable: True`,",
        "and ours); the masked table removes each user's earlier items from the rankings.",
        "",
        "## All 943 test users, seen items kept",
        "",
        *table(res["tables"]["all_users"]),
        "",
        "## All 943 test users, seen items masked",
        "",
        *table(res["tables"]["all_users_seen_masked"]),
        "",
    ]
    for name, rows in res["tables"].items():
        if not name.startswith("ours_first_"):
            continue
        n = name.removeprefix("ours_first_")
        lines += [
            f"## The first {n} test users (ours' evaluation set), seen items kept",
            "",
            f"Ours from `{res['ours']['results']}`; the baselines re-scored on the same users.",
            "",
            *table(rows),
            "",
        ]
    if "ours" in res:
        other = {
            f"{stage}/{k}": v
            for stage in ("after_alignment", "after_srpo")
            for k, v in (res["ours"].get(stage) or {}).items()
            if k.partition("/")[2].split("@")[0] not in ("recall", "ndcg")
        }
        if other:
            lines += ["Ours, other numbers: " + ", ".join(f"{k} {v}" for k, v in other.items())]
        if not res["ours"].get("after_srpo"):
            lines += ["Ours: the results file has no `after_srpo` (SRPO had not run)."]
        lines += [""]
    if res["sasrec"]:
        lines += sasrec_lines(res["sasrec"], res["split_agreement"])
    if "sasrec_rankings_reused" in res:
        lines += [
            f"SASRec's rankings were re-scored from `{res['sasrec_rankings_reused']}` "
            "(a dump of an earlier run of this bench), not retrained in this run.",
            "",
        ]
    lines += [
        "Wall seconds: "
        + ", ".join(f"{k} {v}" for k, v in res["seconds"].items() if v is not None)
        + f". Machine: {res['machine']['platform']}, {res['machine']['cpus']} CPUs (shared), "
        f"OMP_NUM_THREADS={res['omp_num_threads']}.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ours-config", type=Path, default=Path("configs/recsys/ml100k.yaml"))
    p.add_argument("--ours-results", type=Path, help="reuse this results.json, no training")
    p.add_argument("--skip-ours", action="store_true")
    p.add_argument("--skip-sasrec", action="store_true")
    p.add_argument(
        "--sasrec-rankings", type=Path, help="re-score this run_sasrec.py dump, no training"
    )
    p.add_argument("--sasrec-keep", type=Path, help="also copy the SASRec dump here")
    p.add_argument("--sasrec-epochs", type=int, default=10)
    p.add_argument("--sasrec-stopping-step", type=int, default=3)
    p.add_argument("--sasrec-batch-size", type=int, default=256)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", type=Path, default=RESULTS / "recsys_ml100k.json")
    args = p.parse_args()
    if args.k < max(DEFAULT_KS):
        raise SystemExit(f"--k must be >= {max(DEFAULT_KS)}, got {args.k}")

    if args.skip_ours and args.ours_results:
        raise SystemExit("--skip-ours and --ours-results contradict each other")
    if args.ours_results:  # fail now, not after an hour of SASRec
        ours = read_ours(args.ours_results)
    if not args.skip_ours and not args.ours_results and not args.ours_config.exists():
        raise SystemExit(f"--ours-config {args.ours_config} does not exist")

    t_start = time.perf_counter()
    res: dict = {
        "command": shlex.join(["uv", "run", "--no-sync", "python", *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "seen_items": "kept in the main tables; masked in the *_seen_masked table",
        "seconds": {},
        "tables": {"all_users": {}, "all_users_seen_masked": {}},
    }
    interactions = load_interactions()
    times = {(u, i): t for u, i, t in interactions}
    sequences = user_sequences(interactions)
    catalogue = list(load_items())
    test = leave_one_out(sequences, max_history=20).test
    seen = {u: set(seq[:-1]) for u, seq in sequences.items()}

    t0 = time.perf_counter()
    order = popularity_order(train_popularity(sequences), catalogue)
    pop = {}
    for masked in (False, True):
        ranks = most_popular_rankings(order, [seen[ex.user] for ex in test], args.k, masked)
        pop[masked] = {ex.user: r for ex, r in zip(test, ranks, strict=True)}
    res["tables"]["all_users"]["most-popular"] = score_rankings(pop[False], test)
    res["tables"]["all_users_seen_masked"]["most-popular"] = score_rankings(pop[True], test)
    res["seconds"]["most_popular"] = round(time.perf_counter() - t0, 2)
    res["most_popular"] = {"top10_overall": order[:10], "ties": "numeric item id"}

    sas = {}
    if not args.skip_sasrec:
        if args.sasrec_rankings:
            data, seconds = read_rankings(args.sasrec_rankings, args.k), None
            log_path = args.sasrec_rankings.with_suffix(".log")
            epoch_log = log_path.read_text().splitlines() if log_path.exists() else []
            res["sasrec_rankings_reused"] = str(args.sasrec_rankings)
        else:
            with tempfile.TemporaryDirectory(prefix="sasrec_") as tmp:
                data, epoch_log, seconds = run_sasrec(args, Path(tmp), seen)
        users = data["users"]
        sas = {ex.user: users[ex.user]["top"] for ex in test if ex.user in users}
        sas_masked = {
            ex.user: users[ex.user]["top_history_masked"] for ex in test if ex.user in users
        }
        res["tables"]["all_users"]["SASRec (RecBole)"] = score_rankings(sas, test)
        res["tables"]["all_users_seen_masked"]["SASRec (RecBole)"] = score_rankings(
            sas_masked, test
        )
        res["split_agreement"] = split_agreement(test, users, times)
        res["seconds"]["sasrec_subprocess"] = None if seconds is None else round(seconds, 1)
        res["sasrec"] = {k: v for k, v in data.items() if k != "users"}
        res["sasrec"]["epochs"] = epoch_summary(epoch_log)
        res["sasrec"]["env_command"] = shlex.join(SASREC_ENV)
    res.setdefault("sasrec", {})

    if not args.skip_ours:
        if args.ours_results:
            path = args.ours_results  # read (and checked) before the baselines ran
        else:
            path, seconds = run_ours(args.ours_config)
            res["seconds"]["ours_train"] = round(seconds, 1)
            ours = read_ours(path)
        res["ours"] = {"results": str(path)} | ours
        for n, rows in sorted(ours_rows(ours).items(), reverse=True):
            if n > len(test):
                raise ValueError(f"ours evaluated {n} users but the split has {len(test)}")
            subset = test[:n]  # ours evaluates the first test users in file order
            base = {"most-popular": score_rankings(pop[False], subset)}
            if sas:
                base["SASRec (RecBole)"] = score_rankings(sas, subset)
            res["tables"][f"ours_first_{n}"] = base | rows

    res["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    write_markdown(res, args.out.with_suffix(".md"))
    print("\n".join(table(res["tables"]["all_users"])))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
