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
import math
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rewardkit_recsys.inference import IDTrie, direct_recommend
from rewardkit_recsys.metrics import target_rank
from rewardkit_recsys.prompts import seqrec_prompt
from rewardkit_recsys.tasks import MovieLens


def per_user_ndcg(
    folder: str, task: MovieLens, rows, k: int, beams: int, exclude_seen: bool, split: str
) -> list[float]:
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    trie = IDTrie(task.ids, tokenizer)
    out = []
    for i in range(0, len(rows), 16):
        prompts = [seqrec_prompt(task.ids, r["history"]) for r in rows[i : i + 16]]
        seen = None
        if exclude_seen:
            seen = [task.split.seen_before(r["user"], split) for r in rows[i : i + 16]]
        ranked = direct_recommend(
            model, tokenizer, trie, prompts, top_k=k, num_beams=beams, exclude=seen
        )
        for r, items in zip(rows[i : i + 16], ranked, strict=True):
            rank = target_rank(items, r["target"])  # 1-based, None: not listed
            out.append(0.0 if rank is None or rank > k else 1.0 / math.log2(rank + 1))
    return out


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
    common = (task, rows, 10, args.num_beams, args.exclude_seen, args.split)
    before = np.array(per_user_ndcg(args.before, *common))
    after = np.array(per_user_ndcg(args.after, *common))
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
