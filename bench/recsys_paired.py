"""Paired comparison of two GREAM policies (arXiv 2510.20815) in direct mode: the per-user
NDCG@10 of each on the same users, their mean difference and a paired bootstrap 95%
interval. Used for "after alignment" vs "after SRPO" in packages/recsys/README.md:

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_paired.py \\
        runs/recsys/ml100k/aligned runs/recsys/ml100k/final --split test

With `--exclude-seen` each user's earlier items are left out of the rankings (the masked
protocol of bench/recsys_ml100k.py). Writes bench/results/recsys_paired_<split>[_seen_excluded].json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardkit_recsys.metrics import recall_ndcg
from rewardkit_recsys.stages import StageOptions, direct_rankings
from rewardkit_recsys.tasks import MovieLens


def per_user_ndcg(
    folder: str, task: MovieLens, rows, split: str, opts: StageOptions
) -> list[float]:
    """NDCG@10 of each row's target in the direct-mode ranking of the policy in `folder`."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rankings = direct_rankings(model, tokenizer, task, rows, split, opts)
    return [
        recall_ndcg([rk], [r["target"]])["ndcg@10"] for rk, r in zip(rankings, rows, strict=True)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--split", default="test", choices=["test", "valid"])
    p.add_argument("--id-map", default="runs/recsys/ids.json")
    p.add_argument("--num-beams", type=int, default=20)
    p.add_argument("--bootstrap", type=int, default=10_000)
    p.add_argument("--exclude-seen", action="store_true", help="leave seen items out")
    args = p.parse_args()
    torch.set_num_threads(1)
    task = MovieLens(id_map=args.id_map)
    rows = task.rows(args.split)
    opts = StageOptions(top_k=10, num_beams=args.num_beams, exclude_seen=args.exclude_seen)
    before = np.array(per_user_ndcg(args.before, task, rows, args.split, opts))
    after = np.array(per_user_ndcg(args.after, task, rows, args.split, opts))
    diff = after - before
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), size=(args.bootstrap, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    result = {
        "before": args.before,
        "after": args.after,
        "split": args.split,
        "users": len(rows),
        "seen_items": "left out" if args.exclude_seen else "kept",
        "ndcg@10_before": before.mean(),
        "ndcg@10_after": after.mean(),
        "mean_difference": diff.mean(),
        "bootstrap_95": [low, high],
        "users_better": int((diff > 0).sum()),
        "users_worse": int((diff < 0).sum()),
        "command": "uv run --no-sync python bench/recsys_paired.py "
        f"{args.before} {args.after} --split {args.split}"
        + (" --exclude-seen" if args.exclude_seen else ""),
    }
    print(json.dumps(result, indent=1, default=float))
    suffix = "_seen_excluded" if args.exclude_seen else ""
    path = Path("bench/results") / f"recsys_paired_{args.split}{suffix}.json"
    path.write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
