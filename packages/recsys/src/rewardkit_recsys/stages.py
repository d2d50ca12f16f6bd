"""The stages around SRPO (GREAM, arXiv 2510.20815): supervised alignment before it, the
evaluation of both inference modes before and after it.

`recsys.movielens` runs them through the core task hooks, so that

    rewardkit train --config configs/recsys/ml100k.yaml

does the whole pipeline: `Task.prepare_policy` adds the ID tokens to the tokenizer,
resizes the embeddings and runs the supervised alignment (or loads its cached result);
`Task.evaluate_policy` evaluates direct (trie-constrained beam search) and reasoning
recommendation on the test users. Their settings are `task_options` (`StageOptions`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.trainer.config import ConfigError
from rewardkit_recsys.metrics import ndcg_per_user, recall_ndcg

CACHE_INFO = "recsys_alignment.json"  # in the aligned_model folder: what the model was made of


@dataclass
class StageOptions:
    """Alignment (`sft_*`, curriculum `p_start` → `p_end`) and evaluation settings."""

    sft_epochs: int = 1
    sft_batch_size: int = 64
    sft_learning_rate: float = 3e-3
    sft_decay: bool = True  # learning rate falls linearly to 0 over all epochs
    sft_bucket: int = 1  # > 1: sort each run of this many mini-batches by length (less
    # padding, but it groups similar users: 16 cost 0.012 test NDCG@10, README)
    window_stride: int = 1  # seqrec pairs: every stride-th training position of each user
    item_tasks: bool = True  # item2id and id2title pairs for every item, each epoch
    reasoning: bool = True  # mix reasoning samples into alignment
    p_start: float = 0.0  # curriculum: reasoning probability at the start of an epoch
    p_end: float = 0.5  # ... and at its end
    aligned_model: str | None = None  # folder caching the aligned policy (None: no cache)
    alignment_seed: int | None = None  # the seed the aligned policy was made with (None: the
    # run's seed); SRPO runs with other seeds then share one cached aligned policy
    eval_split: str = "test"  # users evaluated: "test" (last item) or "valid" (second to last)
    eval_users: int | None = None  # direct mode: the first N test users (None: all 943)
    reasoning_eval_users: int | None = None  # reasoning: first N (None: eval_users, 0: skip)
    top_k: int = 10
    num_beams: int = 20  # direct mode: beams of the constrained search (>= top_k; wider finds
    # higher-scoring IDs: 10 → 20 beams raised validation NDCG@10 0.053 → 0.060, README)
    exclude_seen: bool = False  # direct mode: leave each user's earlier items out of its ranking
    reasoning_samples: int = 1  # reasoning mode: rationales sampled per user, each followed
    # by a constrained beam search over every item (num_beams); an item keeps its best score
    reasoning_max_tokens: int = 128  # a rationale's budget; past it, </think> is forced
    reasoning_temperature: float = 1.0  # sampling temperature of the rationale
    log_every: int = 0  # alignment: print the loss every N mini-batches (0: never)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> StageOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(
                f"recsys.movielens: unknown options {unknown}; stage options: {sorted(names)}"
            )
        opts = cls(**options)
        positive = [
            "sft_epochs",
            "sft_batch_size",
            "sft_bucket",
            "window_stride",
            "top_k",
            "num_beams",
            "reasoning_samples",
            "reasoning_max_tokens",
        ]
        positive += ["eval_users"] if opts.eval_users is not None else []
        for name in positive:
            value = getattr(opts, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"recsys.movielens: {name} must be an int >= 1, got {value!r}")
        n = opts.reasoning_eval_users
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ConfigError(
                f"recsys.movielens: reasoning_eval_users must be an int >= 0 "
                f"(0: skip reasoning mode) or null, got {n!r}"
            )
        for name in ("p_start", "p_end"):
            if not 0.0 <= getattr(opts, name) <= 1.0:
                raise ConfigError(
                    f"recsys.movielens: {name} must be in [0, 1], got {getattr(opts, name)}"
                )
        if opts.num_beams < opts.top_k:
            raise ConfigError(
                f"recsys.movielens: num_beams ({opts.num_beams}) must be >= top_k ({opts.top_k})"
            )
        if opts.eval_split not in ("test", "valid"):
            raise ConfigError(
                f"recsys.movielens: eval_split must be 'test' or 'valid', got {opts.eval_split!r}"
            )
        if opts.reasoning_temperature <= 0:
            raise ConfigError(
                f"recsys.movielens: reasoning_temperature must be > 0, "
                f"got {opts.reasoning_temperature}"
            )
        if opts.sft_learning_rate <= 0:
            raise ConfigError(
                f"recsys.movielens: sft_learning_rate must be > 0, got {opts.sft_learning_rate}"
            )
        return opts


# -- alignment --------------------------------------------------------------------------
def alignment_stream(task, opts: StageOptions, epoch: int) -> list[dict[str, Any]]:
    """One epoch of the curriculum: seqrec pairs for every `window_stride`-th training
    position of each user (a fresh random offset per epoch, so that with the loss on the
    history every position is a target about once per epoch), item2id and id2title for
    every item, and reasoning pairs mixed in at a growing rate."""
    rng = random.Random(task.seed * 1000 + epoch)
    alignment, reasoning = task.supervised_pairs(
        opts.reasoning, opts.window_stride, rng, item_tasks=opts.item_tasks
    )
    p_start, p_end = (opts.p_start, opts.p_end) if opts.reasoning else (0.0, 0.0)
    from rewardkit_recsys.prompts import curriculum_mix

    return curriculum_mix(alignment, reasoning, p_start, p_end, seed=rng.randrange(2**31))


def cache_key(task, opts: StageOptions, config) -> str:
    """What the aligned policy depends on: ID map, data options, stages, model, seed."""
    train = {k: v for k, v in dataclasses.asdict(opts).items() if k.startswith(("sft", "p_"))}
    data = {
        "ids": task.ids.item_to_id,
        "task": {k: task.options[k] for k in ("max_history", "max_train_rows", "seed")},
        "stages": {
            **train,
            "window_stride": opts.window_stride,
            "reasoning": opts.reasoning,
            "item_tasks": opts.item_tasks,
        },
        "model": [config.model, config.tiny_model, alignment_seed(opts, config), config.dtype],
        "max_length": config.max_prompt_length + 256,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def alignment_seed(opts: StageOptions, config) -> int:
    return config.seed if opts.alignment_seed is None else opts.alignment_seed


def prepare(task, model, tokenizer, config, opts: StageOptions):
    """(model, tokenizer, info): ID tokens added, embeddings resized, aligned; loaded from
    `opts.aligned_model` instead when it holds a policy aligned with the same settings."""
    from rewardkit_recsys.alignment import supervised_alignment
    from rewardkit_recsys.semantic_ids import extend_tokenizer

    if config.lora_r > 0:
        raise ValueError(
            "recsys.movielens: LoRA (lora_r > 0) is not supported: the new ID "
            "token embeddings must be trained"
        )
    key = cache_key(task, opts, config)
    cache = Path(opts.aligned_model) if opts.aligned_model else None
    if cache is not None and (cache / CACHE_INFO).exists():
        info = json.loads((cache / CACHE_INFO).read_text())
        if info.get("key") == key:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            model = AutoModelForCausalLM.from_pretrained(
                cache, dtype=getattr(torch, config.dtype), attn_implementation="sdpa"
            )
            return model.eval(), AutoTokenizer.from_pretrained(cache), {**info, "cached": True}
    if alignment_seed(opts, config) != config.seed:
        raise ConfigError(
            f"recsys.movielens: no aligned policy for alignment_seed "
            f"{opts.alignment_seed} in {opts.aligned_model} (the policy was built with seed "
            f"{config.seed}); align it first with seed={opts.alignment_seed}, then rerun"
        )
    import torch

    with torch.random.fork_rng(devices=[]):  # new embedding rows: reproducible from the seed
        torch.manual_seed(config.seed)
        # a model built from scratch gets plain random rows; a pretrained one, rows drawn
        # around its existing embeddings (the transformers default)
        extend_tokenizer(tokenizer, model, task.ids, mean_resizing=config.model != "tiny")
    id_tokens = set(tokenizer.convert_tokens_to_ids(task.ids.vocabulary()))
    stream = [p for e in range(opts.sft_epochs) for p in alignment_stream(task, opts, e)]
    losses = supervised_alignment(
        model,
        tokenizer,
        stream,
        opts.sft_batch_size,
        opts.sft_learning_rate,
        max_length=config.max_prompt_length + 256,
        prompt_label_ids=id_tokens,
        decay=opts.sft_decay,
        log_every=opts.log_every,
        bucket=opts.sft_bucket,
    )
    tail = losses[-max(len(losses) // 20, 1) :]
    info = {
        "key": key,
        "steps": len(losses),
        "pairs": len(stream),
        "loss_first": losses[0],
        "loss_last": sum(tail) / len(tail),
        "cached": False,
    }
    if cache is not None:
        model.save_pretrained(cache)
        tokenizer.save_pretrained(cache)
        (cache / CACHE_INFO).write_text(json.dumps(info, indent=1))
    return model, tokenizer, info


# -- evaluation -------------------------------------------------------------------------
def direct_rankings(
    model, tokenizer, task, rows, split: str, opts: StageOptions
) -> list[list[str]]:
    """Direct mode for `rows` of `split`: each user's top `opts.top_k` items by constrained
    beam search (`opts.num_beams`), without the user's earlier items when `exclude_seen`."""
    from rewardkit_recsys.inference import IDTrie, direct_recommend
    from rewardkit_recsys.prompts import seqrec_prompt

    trie = IDTrie(task.ids, tokenizer)
    rankings = []
    for i in range(0, len(rows), 16):
        batch = rows[i : i + 16]
        prompts = [seqrec_prompt(task.ids, r["history"]) for r in batch]
        seen = None
        if opts.exclude_seen:
            seen = [task.split.seen_before(r["user"], split) for r in batch]
        rankings += direct_recommend(
            model,
            tokenizer,
            trie,
            prompts,
            top_k=opts.top_k,
            num_beams=opts.num_beams,
            exclude=seen,
        )
    return rankings


def evaluate(
    model, tokenizer, task, opts: StageOptions, per_user: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """Recall/NDCG@{1,5,10} of both inference modes on the first users of `eval_split` (each a
    full ranking by trie-constrained beam search; in reasoning mode after a sampled
    rationale), the fraction of rationales closed by force, and the seconds each took.
    `per_user`, when given, receives each mode's NDCG@10 per user (for paired tests)."""
    from rewardkit_recsys.inference import IDTrie, reasoning_recommend
    from rewardkit_recsys.prompts import reasoning_prompt

    test = task.rows(opts.eval_split)
    rows = test[: opts.eval_users]
    start = time.perf_counter()
    direct = direct_rankings(model, tokenizer, task, rows, opts.eval_split, opts)
    targets = [r["target"] for r in rows]
    out = {f"direct/{k}": v for k, v in recall_ndcg(direct, targets).items()}
    if per_user is not None:
        per_user["direct/ndcg@10"] = ndcg_per_user(direct, targets)
    out["direct/seconds"] = time.perf_counter() - start
    if opts.reasoning_eval_users == 0:
        return out
    start = time.perf_counter()
    rows = test[: opts.reasoning_eval_users or opts.eval_users]
    trie = IDTrie(task.ids, tokenizer)
    reasoned, forced = [], 0
    for i, r in enumerate(rows):
        ranking = reasoning_recommend(
            model,
            tokenizer,
            trie,
            reasoning_prompt(task.ids, r["history"]),
            top_k=opts.top_k,
            num_beams=opts.num_beams,
            num_rationales=opts.reasoning_samples,
            max_new_tokens=opts.reasoning_max_tokens,
            temperature=opts.reasoning_temperature,
            seed=i,
        )
        reasoned.append(ranking.items)
        forced += ranking.invalid
    targets = [r["target"] for r in rows]
    out |= {f"reasoning/{k}": v for k, v in recall_ndcg(reasoned, targets).items()}
    if per_user is not None:
        per_user["reasoning/ndcg@10"] = ndcg_per_user(reasoned, targets)
    out["reasoning/unclosed_fraction"] = forced / (len(rows) * opts.reasoning_samples)
    out["reasoning/seconds"] = time.perf_counter() - start
    return out


def format_table(results: dict[str, dict[str, float]]) -> str:
    """The metrics of each stage side by side, one metric a row."""
    stages = list(results)
    names = [n for n in results[stages[0]] if not n.endswith("/seconds")]
    lines = [f"{'metric':<28}" + "".join(f"{s:>18}" for s in stages)]
    for n in names:
        lines.append(
            f"{n:<28}" + "".join(f"{results[s].get(n, float('nan')):>18.4f}" for s in stages)
        )
    return "\n".join(lines)
