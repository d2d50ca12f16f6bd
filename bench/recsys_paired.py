"""Paired comparison of GREAM policies (arXiv 2510.20815) in direct mode: per-user NDCG@10
on the same users, the mean difference and a bootstrap 95% interval.

Seeds (the issue-19 experiment): SRPO from one aligned policy with several seeds, each run
by `rewardkit train`; every run's results.json holds each test user's NDCG@10 before
(aligned) and after SRPO, so nothing is evaluated twice:

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_paired.py seeds \\
        --config configs/recsys/ml100k.yaml --seeds 0 1 2 --out runs/recsys/paired

Seed 0 aligns (or loads the cached `task_options.aligned_model`); the other seeds load that
policy (`task_options.alignment_seed=0`), so they differ only in SRPO's sampling and prompt
order. A finished seed (its results.json has "after_srpo") is not rerun, so seeds can run
in separate processes (`--seeds 1`, `--seeds 2`) and a last call with all of them pools
them. Extra `--set key=value` go to every run. The report
(bench/results/recsys_paired_seeds_<split>.json) gives, for each seed, the mean
difference and its interval over users; pooled, the mean over seeds of each user's
difference with (a) a bootstrap over users and (b) a two-level bootstrap over seeds and
users (the seed-to-seed spread included); and the gap to SASRec's test NDCG@10.

Folders (two saved policies, evaluated here):

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_paired.py folders \\
        runs/recsys/ml100k/aligned runs/recsys/ml100k/final --split test

With `--exclude-seen` each user's earlier items are left out of the rankings (the masked
protocol of bench/recsys_ml100k.py). Writes bench/results/recsys_paired_<split>[_seen_excluded].json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SASREC_TEST_NDCG10 = 0.0626  # bench/results/recsys_ml100k.md, same split and metric code
METRIC = "direct/ndcg@10"


def bootstrap_ci(diff: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of `diff` (users resampled with replacement)."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def two_level_ci(diffs: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean difference over a (seeds, users) array, resampling seeds and
    users (each with replacement): the spread from run to run counts as well as the users'."""
    rng = np.random.default_rng(seed)
    s, u = diffs.shape
    means = np.empty(n)
    for b in range(n):
        seeds = rng.integers(0, s, size=s)
        users = rng.integers(0, u, size=u)
        means[b] = diffs[np.ix_(seeds, users)].mean()
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarise(before: np.ndarray, after: np.ndarray, n: int = 10_000) -> dict:
    """Paired statistics of one comparison (per-user values, same order)."""
    diff = after - before
    return {
        "ndcg@10_before": float(before.mean()),
        "ndcg@10_after": float(after.mean()),
        "mean_difference": float(diff.mean()),
        "bootstrap_95": list(bootstrap_ci(diff, n)),
        "users_better": int((diff > 0).sum()),
        "users_worse": int((diff < 0).sum()),
    }


def pooled(befores: list[np.ndarray], afters: list[np.ndarray], n: int = 10_000) -> dict:
    """Seeds pooled: each user's difference averaged over seeds (users bootstrap), and the
    two-level (seeds x users) interval."""
    diffs = np.stack([a - b for a, b in zip(afters, befores, strict=True)])
    mean_diff = diffs.mean(axis=0)
    seed_means = diffs.mean(axis=1)
    return {
        "seeds": len(afters),
        "ndcg@10_before": float(np.mean([b.mean() for b in befores])),
        "ndcg@10_after": float(np.mean([a.mean() for a in afters])),
        "mean_difference": float(mean_diff.mean()),
        "bootstrap_95_users": list(bootstrap_ci(mean_diff, n)),
        "bootstrap_95_seeds_and_users": list(two_level_ci(diffs, n)),
        "seed_mean_differences": [float(x) for x in seed_means],
        "seed_sd": float(seed_means.std(ddof=1)) if len(seed_means) > 1 else None,
        "users": int(diffs.shape[1]),
    }


def train_command(config: str, seed: int, out: Path, split: str, sets: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "rewardkit.cli", "train", "--config", config]
    overrides = [f"seed={seed}", f"output_dir={out}", f"task_options.eval_split={split}"]
    if seed != 0:
        overrides.append("task_options.alignment_seed=0")
    for kv in overrides + sets:
        cmd += ["--set", kv]
    return cmd


def run_seed(config: str, seed: int, out: Path, split: str, sets: list[str]) -> dict:
    """results.json of one SRPO run (trained here unless it already finished)."""
    path = out / "results.json"
    done = path.exists() and "after_srpo" in json.loads(path.read_text())
    if not done:
        cmd = train_command(config, seed, out, split, sets)
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    results = json.loads(path.read_text())
    if "per_user" not in results:
        raise RuntimeError(f"{path} has no per-user NDCG@10 (made before issue 19?): rerun it")
    return results


def seeds_main(args: argparse.Namespace) -> dict:
    befores, afters, per_seed = [], [], {}
    for seed in args.seeds:
        out = Path(args.out) / f"seed{seed}"
        results = run_seed(args.config, seed, out, args.split, args.set or [])
        before = np.array(results["per_user"]["after_alignment"][METRIC])
        after = np.array(results["per_user"]["after_srpo"][METRIC])
        if befores and not np.array_equal(before, befores[0]):
            raise RuntimeError(
                f"seed {seed} started from another aligned policy than seed {args.seeds[0]} "
                "(its NDCG@10 before SRPO differs): check task_options.aligned_model"
            )
        befores.append(before)
        afters.append(after)
        per_seed[str(seed)] = summarise(before, after, args.bootstrap) | {
            "seconds": results.get("seconds", {})
        }
    report = {
        "split": args.split,
        "config": args.config,
        "set": args.set or [],
        "per_seed": per_seed,
        "pooled": pooled(befores, afters, args.bootstrap),
        "command": " ".join(
            ["uv run --no-sync python bench/recsys_paired.py seeds", *sys.argv[2:]]
        ),
    }
    if args.split == "test":
        report["sasrec_test_ndcg@10"] = SASREC_TEST_NDCG10
        report["gap_to_sasrec_after_srpo"] = report["pooled"]["ndcg@10_after"] - SASREC_TEST_NDCG10
    return report


def per_user_ndcg(folder: str, task, rows, split: str, opts) -> list[float]:
    """NDCG@10 of each row's target in the direct-mode ranking of the policy in `folder`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit_recsys.metrics import ndcg_per_user
    from rewardkit_recsys.stages import direct_rankings

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rankings = direct_rankings(model, tokenizer, task, rows, split, opts)
    return ndcg_per_user(rankings, [r["target"] for r in rows])


def folders_main(args: argparse.Namespace) -> dict:
    import torch

    from rewardkit_recsys.stages import StageOptions
    from rewardkit_recsys.tasks import MovieLens

    torch.set_num_threads(1)
    task = MovieLens(id_map=args.id_map)
    rows = task.rows(args.split)
    opts = StageOptions(top_k=10, num_beams=args.num_beams, exclude_seen=args.exclude_seen)
    before = np.array(per_user_ndcg(args.before, task, rows, args.split, opts))
    after = np.array(per_user_ndcg(args.after, task, rows, args.split, opts))
    return {
        "before": args.before,
        "after": args.after,
        "split": args.split,
        "users": len(rows),
        "seen_items": "left out" if args.exclude_seen else "kept",
        **summarise(before, after, args.bootstrap),
        "command": "uv run --no-sync python bench/recsys_paired.py folders "
        f"{args.before} {args.after} --split {args.split}"
        + (" --exclude-seen" if args.exclude_seen else ""),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("seeds", help="SRPO with several seeds from one aligned policy")
    s.add_argument("--config", default="configs/recsys/ml100k.yaml")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--out", default="runs/recsys/paired")
    s.add_argument("--split", default="test", choices=["test", "valid"])
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    s.add_argument("--bootstrap", type=int, default=10_000)
    s.add_argument("--results", default=None, help="report path (default bench/results/...)")
    f = sub.add_parser("folders", help="two saved policies, evaluated here")
    f.add_argument("before")
    f.add_argument("after")
    f.add_argument("--split", default="test", choices=["test", "valid"])
    f.add_argument("--id-map", default="runs/recsys/ids.json")
    f.add_argument("--num-beams", type=int, default=20)
    f.add_argument("--bootstrap", type=int, default=10_000)
    f.add_argument("--exclude-seen", action="store_true", help="leave seen items out")
    args = p.parse_args()
    if args.mode == "seeds":
        report = seeds_main(args)
        path = Path(args.results or f"bench/results/recsys_paired_seeds_{args.split}.json")
    else:
        report = folders_main(args)
        suffix = "_seen_excluded" if args.exclude_seen else ""
        path = Path("bench/results") / f"recsys_paired_{args.split}{suffix}.json"
    print(json.dumps(report, indent=1, default=float))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
