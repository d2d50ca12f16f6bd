"""Overhead of SALT's trajectory graph and GiGPO's anchor groups per training step.

Builds a group of 16 trajectories x 50 steps (random walks on a 10x10 grid, so states
repeat across and within trajectories as in a seeded environment), then times, on CPU:

* grpo_broadcast:  the plain GRPO z-score broadcast to tokens (the baseline)
* salt_steps:      SALT's graph merge and step advantages (no tensor)
* salt_advantages: the full `agents.salt` estimator, (B, T) tensor included
* salt_graph:      the networkx export of the graph
* gigpo_advantages: the full `agents.gigpo` estimator
* the same for text states (no turn.state: the observation text is the state)
* draw_graph:      one PNG drawing (not on the training path)

Run:  uv run --no-sync python bench/agents_overhead.py
Writes bench/results/agents_overhead.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from rewardkit.types import RolloutBatch, Turn
from rewardkit_agents.gigpo import GiGPO
from rewardkit_agents.graph import draw_graph
from rewardkit_agents.salt import SALT
from rewardkit_agents.trajectories import group_advantages

MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
ACTION_TOKENS, OBSERVATION_TOKENS = 8, 40


def make_batch(n: int, steps: int, groups: int, size: int, text_states: bool, seed: int):
    """`groups` prompt groups of `n` random-walk trajectories of `steps` steps each."""
    rng = random.Random(seed)
    turns_list, scores, group_ids = [], [], []
    for g in range(groups):
        for _ in range(n):
            r, c = size // 2, size // 2
            turns = []
            for t in range(steps):
                action = rng.choice(list(MOVES))
                state = (r, c)
                dr, dc = MOVES[action]
                r, c = min(max(r + dr, 0), size - 1), min(max(c + dc, 0), size - 1)
                start = t * (ACTION_TOKENS + OBSERVATION_TOKENS)
                observation = f"You moved {action}.\nYou are at row {r}, column {c}. " + "." * 60
                turns.append(
                    Turn(
                        start=start,
                        end=start + ACTION_TOKENS,
                        action=f"<action>{action}</action>",
                        observation=observation,
                        state=None if text_states else state,
                        reward=0.0,
                    )
                )
            turns_list.append(turns)
            scores.append(float(r == 0))  # "success": ended on the top row
            group_ids.append(g)
    T = steps * (ACTION_TOKENS + OBSERVATION_TOKENS)
    mask = torch.tensor(([1.0] * ACTION_TOKENS + [0.0] * OBSERVATION_TOKENS) * steps)
    return RolloutBatch(
        scores=torch.tensor(scores),
        groups=torch.tensor(group_ids),
        completion_mask=mask.repeat(len(scores), 1).reshape(len(scores), T),
        turns=turns_list,
    )


def grpo_broadcast(batch: RolloutBatch) -> torch.Tensor:
    adv = group_advantages(batch.scores, batch.groups, "grpo").float()
    return adv[:, None] * batch.completion_mask


def timeit(fn, repeats: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3),
        "min_ms": round(times[0], 3),
        "repeats": repeats,
    }


def run(n: int, steps: int, groups: int, repeats: int) -> dict[str, dict[str, float]]:
    results = {}
    salt, gigpo = SALT(), GiGPO()
    for label, text_states in (("", False), ("text_", True)):
        batch = make_batch(n, steps, groups, size=10, text_states=text_states, seed=0)
        results[f"{label}grpo_broadcast"] = timeit(lambda b=batch: grpo_broadcast(b), repeats)
        results[f"{label}salt_steps"] = timeit(lambda b=batch: salt.steps(b), repeats)
        results[f"{label}salt_advantages"] = timeit(lambda b=batch: salt(b), repeats)
        results[f"{label}salt_graph"] = timeit(lambda b=batch: salt.graph(b, group=0), repeats)
        results[f"{label}gigpo_advantages"] = timeit(lambda b=batch: gigpo(b), repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="bench/results/agents_overhead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was

    main_results = run(args.trajectories, args.steps, groups=1, repeats=args.repeats)
    scaled = run(args.trajectories, args.steps, groups=8, repeats=max(5, args.repeats // 3))
    batch = make_batch(args.trajectories, args.steps, 1, 10, False, 0)
    graph = SALT().graph(batch)
    with tempfile.TemporaryDirectory() as tmp:
        drawing = timeit(lambda: draw_graph(graph, Path(tmp) / "g.png"), repeats=3, warmup=1)

    command = "uv run --no-sync python bench/agents_overhead.py " + " ".join(sys.argv[1:])
    report = {
        "command": command.strip(),
        "config": {
            "trajectories_per_group": args.trajectories,
            "steps": args.steps,
            "tokens_per_step": ACTION_TOKENS + OBSERVATION_TOKENS,
            "state_space": "10x10 grid random walk",
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1m_at_start": load,
        },
        "graph": {"nodes": graph.number_of_nodes(), "edges": graph.number_of_edges()},
        "one_group": main_results,
        "eight_groups": scaled,
        "draw_graph": drawing,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")

    lines = [
        "# agents overhead: SALT graph and GiGPO anchor groups",
        "",
        f"Command: `{report['command']}` (CPU, 1 torch thread, shared machine with "
        f"{os.cpu_count()} cores, 1-minute load {load} at the start; medians of "
        f"{args.repeats} runs, min = fastest run, the least disturbed by other work).",
        "",
        f"One prompt group of {args.trajectories} trajectories x {args.steps} steps "
        f"({ACTION_TOKENS} policy + {OBSERVATION_TOKENS} observation tokens a step); the "
        f"SALT graph has {graph.number_of_nodes()} states and {graph.number_of_edges()} edges.",
        "",
        "| what | 16x50 median ms | p90 ms | min ms | 8 groups (128x50) median ms |",
        "|---|---|---|---|---|",
    ]
    for name, value in main_results.items():
        lines.append(
            f"| {name} | {value['median_ms']:.2f} | {value['p90_ms']:.2f} | "
            f"{value['min_ms']:.2f} | {scaled[name]['median_ms']:.2f} |"
        )
    lines += [
        "",
        f"draw_graph (PNG, not on the training path): {drawing['median_ms']:.0f} ms.",
        "",
        "`text_` rows use the observation text as the state (no `turn.state`), which adds",
        "canonicalising the text. `grpo_broadcast` is the outcome-only baseline.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
