"""End to end GREAM on MovieLens-100K: IDs → supervised alignment → SRPO → evaluation.

    rewardkit-recsys run --config configs/recsys/ml100k.yaml [--set key=value ...]

The YAML is a `GRPOConfig` (task recsys.movielens, advantage recsys.bgae, ...) plus a
`recsys:` section for the stages around GRPO (see `PipelineOptions`). Stages:

1. the task builds (or loads) the semantic-ID map;
2. a policy trained from scratch: the tiny character-level model of `rewardkit.tiny` with
   the ID tokens added, taught by supervised alignment over the curriculum stream
   (seqrec, item→ID, ID→title, with reasoning samples mixed in at a growing rate);
3. SRPO: `GRPOTrainer(config, model=..., tokenizer=...)` with `recsys.id_match` and
   `recsys.bgae` (dynamic sampling and β from the config);
4. evaluation of both inference modes on test users: Recall/NDCG@{1,5,10} for the
   trie-constrained beam search and for reasoning sampling (with its invalid count),
   after alignment and after SRPO. Results go to `<output_dir>/results.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class PipelineOptions:
    sft_epochs: int = 1
    sft_batch_size: int = 32
    sft_learning_rate: float = 3e-3
    reasoning: bool = True  # mix reasoning samples into alignment
    p_start: float = 0.0  # curriculum: reasoning probability at the start of an epoch
    p_end: float = 0.5  # ... and at its end
    eval_users: int = 100  # test users evaluated (the first ones, in file order)
    top_k: int = 10
    reasoning_samples: int = 8
    reasoning_max_tokens: int = 200


def load(path: str | None, overrides: list[str]) -> tuple[Any, PipelineOptions]:
    """GRPOConfig and PipelineOptions from YAML plus `key=value` overrides (dotted keys:
    `recsys.sft_epochs=2`, `task_options.levels=4`); the task's defaults sit under both."""
    from rewardkit.registry import TASKS
    from rewardkit.trainer.config import ConfigError, GRPOConfig

    data: dict[str, Any] = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {key!r}: {part!r} is not a mapping")
        node[leaf] = yaml.safe_load(value)
    ours = data.pop("recsys", None) or {}
    names = {f.name for f in dataclasses.fields(PipelineOptions)}
    unknown = sorted(set(ours) - names)
    if unknown:
        raise ConfigError(f"recsys: unknown keys {unknown}; allowed: {sorted(names)}")
    task = data.setdefault("task", "recsys.movielens")
    if task != "recsys.movielens":
        raise ConfigError(f"rewardkit-recsys run trains recsys.movielens, not {task!r}")
    config = GRPOConfig.from_dict({**TASKS.get(task).default_config, **data})
    return config, PipelineOptions(**ours)


def build_policy(config, ids):
    """A tiny model trained from scratch: character tokenizer plus the ID tokens."""
    from rewardkit.tiny import build_tiny_model
    from rewardkit_recsys.semantic_ids import extend_tokenizer

    options = {"seed": config.seed, **config.tiny_model}
    model, tokenizer = build_tiny_model(**options)
    extend_tokenizer(tokenizer, model, ids, mean_resizing=False)  # trained from scratch
    return model, tokenizer


def evaluate(model, tokenizer, task, opts: PipelineOptions) -> dict[str, float]:
    """Both inference modes on the first `eval_users` test users."""
    from rewardkit_recsys.inference import IDTrie, direct_recommend, reasoning_recommend
    from rewardkit_recsys.metrics import recall_ndcg
    from rewardkit_recsys.prompts import reasoning_prompt, seqrec_prompt

    rows = task.rows("test")[: opts.eval_users]
    targets = [r["target"] for r in rows]
    trie = IDTrie(task.ids, tokenizer)
    direct = []
    for start in range(0, len(rows), 16):
        prompts = [seqrec_prompt(task.ids, r["history"]) for r in rows[start : start + 16]]
        direct += direct_recommend(model, tokenizer, trie, prompts, top_k=opts.top_k)
    out = {f"direct/{k}": v for k, v in recall_ndcg(direct, targets).items()}
    reasoned, invalid = [], 0
    for i, r in enumerate(rows):
        ranking = reasoning_recommend(
            model,
            tokenizer,
            task.ids,
            reasoning_prompt(task.ids, r["history"]),
            num_samples=opts.reasoning_samples,
            max_new_tokens=opts.reasoning_max_tokens,
            seed=i,
        )
        reasoned.append(ranking.items[: opts.top_k])
        invalid += ranking.invalid
    out |= {f"reasoning/{k}": v for k, v in recall_ndcg(reasoned, targets).items()}
    out["reasoning/invalid_fraction"] = invalid / (len(rows) * opts.reasoning_samples)
    return out


def print_none(msg: str) -> None:
    pass


def run(config, opts: PipelineOptions) -> dict[str, Any]:
    from rewardkit.trainer.components import resolve
    from rewardkit.trainer.trainer import GRPOTrainer
    from rewardkit_recsys.alignment import supervised_alignment
    from rewardkit_recsys.prompts import curriculum_mix

    times: dict[str, float] = {}
    say = (lambda msg: print(f"[recsys] {msg}", flush=True)) if config.progress else print_none
    say("building or loading the ID map")
    start = time.perf_counter()
    parts = resolve(config)  # builds or loads the ID map
    task = parts.task
    times["ids"] = time.perf_counter() - start

    say(f"supervised alignment ({opts.sft_epochs} epoch(s))")
    start = time.perf_counter()
    model, tokenizer = build_policy(config, task.ids)
    alignment, reasoning = task.supervised_pairs(reasoning=opts.reasoning)
    losses = []
    for epoch in range(opts.sft_epochs):
        p_start, p_end = (opts.p_start, opts.p_end) if opts.reasoning else (0.0, 0.0)
        stream = curriculum_mix(alignment, reasoning, p_start, p_end, seed=config.seed + epoch)
        losses += supervised_alignment(
            model,
            tokenizer,
            stream,
            opts.sft_batch_size,
            opts.sft_learning_rate,
            max_length=config.max_prompt_length + 256,
        )
    times["alignment"] = time.perf_counter() - start

    say(f"evaluating both modes on {opts.eval_users} test users")
    start = time.perf_counter()
    results: dict[str, Any] = {"after_alignment": evaluate(model, tokenizer, task, opts)}
    times["eval_after_alignment"] = time.perf_counter() - start

    say(f"SRPO: {config.max_steps} GRPO steps with {config.advantage}")
    start = time.perf_counter()
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer, components=parts)
    history = trainer.train()
    times["srpo"] = time.perf_counter() - start

    say("evaluating both modes after SRPO")
    start = time.perf_counter()
    policy = trainer.accelerator.unwrap_model(trainer.model).eval()
    results["after_srpo"] = evaluate(policy, tokenizer, task, opts)
    times["eval_after_srpo"] = time.perf_counter() - start
    results |= {
        "alignment_loss_first_last": [losses[0], losses[-1]],
        "alignment_steps": len(losses),
        "srpo_reward_mean": [
            h.get("reward/total/mean") for h in history if "reward/total/mean" in h
        ],
        "seconds": times,
        "id_map": {
            "levels": task.ids.levels,
            "codes_per_level": task.ids.codes_per_level,
            "suffix_size": task.ids.suffix_size,
            "items": len(task.ids.item_to_id),
        },
        "pipeline": dataclasses.asdict(opts),
    }
    out = Path(config.output_dir) / "results.json"
    out.write_text(json.dumps(results, indent=1, default=float))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rewardkit-recsys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="IDs, supervised alignment, SRPO, evaluation of both modes")
    p.add_argument("--config", help="YAML config (a GRPOConfig plus a recsys: section)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from rewardkit.registry import RegistryError
    from rewardkit.trainer.config import ConfigError

    try:
        config, opts = load(args.config, args.set)
    except (ConfigError, RegistryError, FileNotFoundError) as exc:
        print(f"rewardkit-recsys: error: {exc}", file=sys.stderr)
        return 2
    results = run(config, opts)
    for stage in ("after_alignment", "after_srpo"):
        metrics = results[stage]
        print(stage, {k: round(v, 4) for k, v in metrics.items()})
    print(f"seconds: {results['seconds']}; results in {config.output_dir}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
