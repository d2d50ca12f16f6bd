"""How often SRPO's pass@k bonus can fire (GREAM, arXiv 2510.20815, §3.3), before training.

For training prompts drawn at random, p = the probability that the policy's trie-masked
sampling at `--temperature` (what SRPO's rollouts do) writes the true next item, computed
exactly (`constrained_item_logprob`: one forward pass per prompt, no sampling). For each
group size G the expected share of groups with at least one exact hit is the mean over
prompts of 1 − (1 − p)^G: the share of groups where the bonus is not 0. Use it to choose
`num_generations`; the trainer logs the realised share as
`reward/recsys.id_match/groups_with_hit`.

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_hit_share.py \\
        runs/recsys/ml100k/aligned --prompts 500

Writes bench/results/recsys_hit_share.json (or `--results`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np


def expected_hit_share(p: np.ndarray, groups: list[int]) -> dict[str, float]:
    """{G: mean over prompts of 1 − (1 − p_i)^G}."""
    return {str(g): float(np.mean(1.0 - (1.0 - p) ** g)) for g in groups}


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit_recsys.inference import IDTrie, constrained_item_logprob
    from rewardkit_recsys.tasks import MovieLens

    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("policy", help="a saved aligned policy (folder)")
    a.add_argument("--id-map", default="runs/recsys/ids.json")
    a.add_argument("--prompts", type=int, default=500)
    a.add_argument("--temperature", type=float, default=1.0)
    a.add_argument("--groups", type=int, nargs="+", default=[16, 32, 64, 128])
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--results", default="bench/results/recsys_hit_share.json")
    args = a.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    task = MovieLens(id_map=args.id_map)
    model = AutoModelForCausalLM.from_pretrained(args.policy).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.policy)
    trie = IDTrie(task.ids, tokenizer)
    rows = task.rows("train")
    chosen = random.Random(args.seed).sample(range(len(rows)), min(args.prompts, len(rows)))
    logp = []
    for i in chosen:
        row = rows[i]
        prompt = tokenizer(row["prompt"])["input_ids"]
        target = tokenizer(row["target_id"], add_special_tokens=False)["input_ids"]
        logp.append(constrained_item_logprob(model, trie, prompt, target, args.temperature))
    p = np.exp(np.array(logp))
    report = {
        "policy": args.policy,
        "prompts": len(chosen),
        "temperature": args.temperature,
        "p_true_item_mean": float(p.mean()),
        "p_true_item_median": float(np.median(p)),
        "p_true_item_quantiles_10_90": [float(q) for q in np.quantile(p, [0.1, 0.9])],
        "expected_share_of_groups_with_a_hit": expected_hit_share(p, args.groups),
        "seconds": time.perf_counter() - start,
        "command": " ".join(["uv run --no-sync python bench/recsys_hit_share.py", *sys.argv[1:]]),
    }
    print(json.dumps(report, indent=1))
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
