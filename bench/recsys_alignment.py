"""Supervised alignment of GREAM (arXiv 2510.20815, §3.2) with given stage options, then
direct-mode Recall/NDCG@{1,5,10} on all 943 users of the validation and test splits.

Used for the alignment table of packages/recsys/README.md ("What the alignment needed"):

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_alignment.py \\
        '{"reasoning": false, "sft_bucket": 1, "window_stride": 20}' runs/recsys/align/B

(The table's rows ran with window stride 20, the config's default until session 4; the
config now has 10, so pass `"window_stride": 20` to repeat them.)

The JSON argument overrides `task_options` of configs/recsys/ml100k.yaml (options of
`recsys.movielens` and the stage options of `rewardkit_recsys.stages.StageOptions`); the
model is that file's. The aligned policy is written to the folder given: it is the cache
that `rewardkit train --config configs/recsys/ml100k.yaml --set task_options.<key>=<value>
--set task_options.aligned_model=<folder>` loads. The metrics go to `<folder>.json`.
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

CONFIG = "configs/recsys/ml100k.yaml"  # model and task options; the JSON argument overrides


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    folder = sys.argv[2]
    config = GRPOConfig.load(CONFIG)
    options = config.task_options | json.loads(sys.argv[1]) | {"aligned_model": folder}
    torch.set_num_threads(1)
    task = MovieLens(**options)
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
