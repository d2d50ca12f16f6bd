"""Supervised alignment of GREAM (arXiv 2510.20815, §3.2) with given stage options, then
direct-mode Recall/NDCG@{1,5,10} on all 943 users of the validation and test splits.

Used for the alignment table of packages/recsys/README.md ("What the alignment needed"):

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_alignment.py \\
        '{"reasoning": false, "sft_bucket": 1}' runs/recsys/align/B

The options are `task_options` of `recsys.movielens` (stage options of
`rewardkit_recsys.stages.StageOptions`) on top of ALIGNMENT below; the aligned policy is
written to the folder given (a cache: `rewardkit train --set task_options.aligned_model=…`
with the same options loads it) and the metrics to `<folder>.json`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import torch

from rewardkit.trainer.components import load_policy
from rewardkit.trainer.config import GRPOConfig
from rewardkit_recsys.stages import evaluate, prepare
from rewardkit_recsys.tasks import MovieLens

ALIGNMENT = {  # the alignment settings of configs/recsys/ml100k.yaml
    "sft_epochs": 12,
    "sft_batch_size": 64,
    "sft_learning_rate": 3e-3,
    "window_stride": 20,
    "item_tasks": False,
    "reasoning": True,
    "p_start": 0.0,
    "p_end": 0.4,
    "log_every": 100,
}


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    options = ALIGNMENT | json.loads(sys.argv[1])
    folder = sys.argv[2]
    torch.set_num_threads(1)
    task = MovieLens(id_map="runs/recsys/ids.json", aligned_model=folder, **options)
    config = GRPOConfig(
        model="tiny",
        tiny_model={"hidden_size": 128, "num_layers": 2, "num_heads": 4,
                    "max_position_embeddings": 512},
        task="recsys.movielens",
        max_prompt_length=256,
        seed=0,
    )
    model, tokenizer = load_policy(config)
    start = time.perf_counter()
    model, tokenizer, info = prepare(task, model, tokenizer, config, task.stages)
    seconds = time.perf_counter() - start
    print(f"alignment: {seconds:.0f} s, {info}", flush=True)
    results = {}
    for split in ("valid", "test"):
        opts = dataclasses.replace(task.stages, eval_split=split, reasoning_eval_users=0)
        results[split] = evaluate(model, tokenizer, task, opts)
        print(split, json.dumps(results[split]), flush=True)
    out = {"options": options, "alignment": info, "alignment_seconds": seconds, **results}
    with open(folder.rstrip("/") + ".json", "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
