"""Padded vs packed training micro-batches: padding fraction and forward+backward throughput.

One GRPO-like batch: prompts of 8-24 tokens, completion lengths drawn from a long-tailed
lognormal (seeded), cut by `rewardkit.data.make_micro_batches` at the same token budget in
both layouts, for each budget given. For each layout, one "pass" runs every micro-batch
through a tiny Llama (`rewardkit.tiny`, 4 layers, 128 wide, sdpa, float32) on the CPU:
`completion_logprobs`, a mean loss, backward. Passes alternate padded / packed so that load
on the (shared) machine hits both alike. Reported per budget and layout:

* padding_fraction: pad tokens / tokens fed to the model
* real_tokens_per_s: non-pad tokens per second of forward+backward (median over passes)
* attention_cells: sum over micro-batches of rows x length^2, the score matrix sdpa computes
  when it gets a mask (a packed row is one dense, block-diagonally masked square)
* collate_ms: time to build the micro-batches

Run:  uv run --no-sync python bench/collate.py
Writes bench/results/collate.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from rewardkit.data import TrainSequence, completion_logprobs, make_micro_batches
from rewardkit.tiny import build_tiny_model

RESULTS = Path(__file__).parent / "results"


def make_sequences(n: int, vocab: int, seed: int, median: float, sigma: float, cap: int):
    """`n` samples: uniform 8-24 token prompts, lognormal(log(median), sigma) completions
    clipped to [1, cap]."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(median), sigma, size=n)), 1, cap).astype(int)
    seqs = []
    for i, c in enumerate(lengths):
        p = int(rng.integers(8, 25))
        prompt = rng.integers(4, vocab, size=p).tolist()
        completion = rng.integers(4, vocab, size=int(c)).tolist()
        seqs.append(TrainSequence(prompt, completion, i))
    return seqs, lengths


def train_pass(model, micro_batches) -> tuple[float, float]:
    """Forward+backward over every micro-batch; returns (wall seconds, CPU seconds of this
    process). With one torch thread the CPU time is little affected by other processes on a
    shared machine, the wall time is."""
    wall, cpu = time.perf_counter(), time.process_time()
    for mb in micro_batches:
        logprobs, _ = completion_logprobs(model, mb)
        (-logprobs.mean()).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_layouts(model, seqs, budget: int, reps: int, pad_id: int) -> dict:
    """Cut `seqs` both ways at `budget`, then time `reps` alternating passes of each."""
    layouts: dict[str, dict] = {}
    for mode in ("padded", "packed"):
        t0 = time.perf_counter()
        mbs = make_micro_batches(seqs, budget, mode, pad_id=pad_id)
        collate_ms = (time.perf_counter() - t0) * 1000
        fed = sum(mb.input_ids.numel() for mb in mbs)
        real = sum(mb.num_tokens for mb in mbs)
        layouts[mode] = {
            "micro_batches": mbs,
            "collate_ms": round(collate_ms, 2),
            "num_micro_batches": len(mbs),
            "largest_micro_batch_tokens": max(mb.input_ids.numel() for mb in mbs),
            "tokens_fed": fed,
            "real_tokens": real,
            "padding_fraction": round(1 - real / fed, 4),
            "attention_cells": sum(
                mb.input_ids.shape[0] * mb.input_ids.shape[1] ** 2 for mb in mbs
            ),
            "seconds": [],
            "cpu_seconds": [],
        }
    for mode in layouts:  # one warm-up pass each
        train_pass(model, layouts[mode]["micro_batches"])
    for _ in range(reps):  # alternate the layouts
        for mode in layouts:
            wall, cpu = train_pass(model, layouts[mode]["micro_batches"])
            layouts[mode]["seconds"].append(wall)
            layouts[mode]["cpu_seconds"].append(cpu)

    results = {}
    for mode, r in layouts.items():
        median_s = statistics.median(r["seconds"])
        median_cpu = statistics.median(r["cpu_seconds"])
        skip = ("micro_batches", "seconds", "cpu_seconds")
        results[mode] = {k: v for k, v in r.items() if k not in skip}
        results[mode] |= {
            "pass_seconds": [round(t, 3) for t in r["seconds"]],
            "pass_cpu_seconds": [round(t, 3) for t in r["cpu_seconds"]],
            "median_pass_seconds": round(median_s, 3),
            "median_pass_cpu_seconds": round(median_cpu, 3),
            "real_tokens_per_s": round(r["real_tokens"] / median_s, 1),
            "real_tokens_per_cpu_s": round(r["real_tokens"] / median_cpu, 1),
            "fed_tokens_per_s": round(r["tokens_fed"] / median_s, 1),
        }
    padded, packed = results["padded"], results["packed"]
    results["packed_speedup_over_padded"] = {
        "wall": round(padded["median_pass_seconds"] / packed["median_pass_seconds"], 3),
        "cpu": round(padded["median_pass_cpu_seconds"] / packed["median_pass_cpu_seconds"], 3),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=[256, 1024, 4096], help="tokens per micro-batch"
    )
    parser.add_argument("--median", type=float, default=40.0, help="median completion length")
    parser.add_argument("--sigma", type=float, default=0.9, help="lognormal sigma")
    parser.add_argument("--cap", type=int, default=512, help="max completion length")
    parser.add_argument("--reps", type=int, default=4, help="timed passes per layout")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "collate.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model, tokenizer = build_tiny_model(
        seed=args.seed, num_layers=4, hidden_size=128, num_heads=4, max_position_embeddings=1024
    )
    model.train()
    seqs, lengths = make_sequences(
        args.samples, len(tokenizer), args.seed, args.median, args.sigma, args.cap
    )
    started = time.perf_counter()
    by_budget = {
        str(b): measure_layouts(model, seqs, b, args.reps, tokenizer.pad_token_id)
        for b in args.budgets
    }

    report = {
        "command": "uv run --no-sync python " + " ".join(sys.argv),
        "config": {
            "samples": args.samples,
            "token_budgets": args.budgets,
            "prompt_tokens": "uniform 8-24",
            "completion_tokens": f"lognormal(log {args.median}, {args.sigma}) clipped to [1, {args.cap}]",
            "completion_length_stats": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "p90": round(float(np.percentile(lengths, 90)), 1),
                "max": int(lengths.max()),
            },
            "model": "rewardkit.tiny Llama, 4 layers, hidden 128, 4 heads, sdpa, float32, CPU",
            "timed_passes_per_layout": args.reps,
            "seed": args.seed,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "results_by_token_budget": by_budget,
        "timed_section_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    for budget, results in by_budget.items():
        fraction = results["packed"]["padding_fraction"]
        assert fraction < 0.01, f"packed padding {fraction} >= 1% at budget {budget}"


if __name__ == "__main__":
    main()
