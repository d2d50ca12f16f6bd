"""Reward overhead of VeRPO, excluding execution: test weights, turn/trajectory rewards and
advantages for a group of 16 trajectories x 4 turns x 50 tests (random pass matrices).

Times (1) the equations alone (`group_rewards` + `group_advantages`), (2) the reward
class `code.verpo` over 16 multi-turn samples with a lookup executor (no sandbox), and
(3) the advantage `code.verpo` on the resulting RolloutBatch (16 x 4 turns x 64 tokens).
Writes bench/results/code_verpo_overhead.{json,md}.

    uv run --no-sync python bench/code_verpo_overhead.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from rewardkit.types import RolloutBatch, Sample, Turn
from rewardkit_code.execution import CodeExecutor
from rewardkit_code.sandbox import TestOutcome
from rewardkit_code.verpo import VeRPOAdvantage, VeRPOReward, group_advantages, group_rewards

RESULTS = Path(__file__).parent / "results"
N, T, J, TOKENS = 16, 4, 50, 64


class LookupExecutor(CodeExecutor):
    def __init__(self, table):
        super().__init__(backend="local")
        self.table = table

    def outcomes(self, items):
        return [[TestOutcome("pass" if p else "fail") for p in self.table[c]] for c, _ in items]


def timed(fn, repeats: int) -> dict[str, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * len(times))]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    difficulty = torch.rand(J, generator=gen)
    mats = [(torch.rand(T, J, generator=gen) > difficulty).int() for _ in range(N)]

    def equations():
        r_turn, r_traj, _, _ = group_rewards(mats, 2.0, 0.1, 1e-3, 0.9)
        group_advantages(r_turn, r_traj, 1.0)

    table, samples = {}, []
    per_turn = TOKENS // T
    for i, m in enumerate(mats):
        turns = []
        for t in range(T):
            table[f"s{i}t{t}"] = m[t].tolist()
            turns.append(Turn(t * per_turn, (t + 1) * per_turn, action=f"s{i}t{t}"))
        samples.append(
            Sample(
                "p",
                "c",
                completion_ids=list(range(TOKENS)),
                group=0,
                meta={"tests": [{"type": "assert", "code": "pass"}] * J},
                turns=turns,
            )
        )
    reward = VeRPOReward(executor=LookupExecutor(table))
    outputs = reward(samples)
    batch = RolloutBatch.from_samples(samples, outputs)
    advantage = VeRPOAdvantage()

    result = {
        "group": {"trajectories": N, "turns": T, "tests": J, "tokens_per_sample": TOKENS},
        "repeats": args.repeats,
        "equations": timed(equations, args.repeats),
        "reward_class_without_execution": timed(lambda: reward(samples), args.repeats),
        "advantage_class": timed(lambda: advantage(batch), args.repeats),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "code_verpo_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    md = f"""# VeRPO reward overhead (no execution)

Command: `uv run --no-sync python bench/code_verpo_overhead.py --repeats {args.repeats} --threads {args.threads}`
Group: {N} trajectories x {T} turns x {J} tests, {TOKENS} tokens per sample; CPU, torch threads {result["torch_threads"]}, 1-min load average {result["load_average_1min"]:.1f} on a shared machine.

| part | median (ms) | p90 (ms) |
|---|---|---|
| equations (weights, R_turn, R_traj, A) | {result["equations"]["median_ms"]:.3f} | {result["equations"]["p90_ms"]:.3f} |
| reward `code.verpo` (lookup executor, 64 attempts) | {result["reward_class_without_execution"]["median_ms"]:.3f} | {result["reward_class_without_execution"]["p90_ms"]:.3f} |
| advantage `code.verpo` on the RolloutBatch | {result["advantage_class"]["median_ms"]:.3f} | {result["advantage_class"]["p90_ms"]:.3f} |

For scale: executing those 64 attempts x 50 tests = 3200 runs in the warm docker pool
takes seconds (bench/results/code_sandbox_throughput.md), so the reward arithmetic is
negligible next to execution.
"""
    (RESULTS / "code_verpo_overhead.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
