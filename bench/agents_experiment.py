"""GRPO vs GiGPO vs SALT on the built-in text environments, tiny policy, CPU.

    OMP_NUM_THREADS=1 uv run --no-sync python bench/agents_experiment.py [--envs gridworld frozenlake]

Protocol (the same for the three estimators of an environment):

1. A tiny character-level policy (`rewardkit.tiny`) is warm-started on a few
   demonstrations: expert action sequences computed from the environment by breadth-first
   search over copies of it (the shortest plan to success), laid out turn by turn exactly
   as core's `multi_turn_rollout` lays out an episode (prompt tail, first observation,
   then action, <eos>, observation, ...). One action per turn, the bare word ("up").
   Supervised with `rewardkit.sft.supervised_warm_start` on (context, action) pairs.
2. From that one warm-started checkpoint, `GRPOTrainer` runs the config of
   configs/agents/ (gridworld_*.yaml, frozenlake_gigpo.yaml) with `advantage` set to
   `grpo`, `agents.gigpo` (GiGPO, arXiv 2505.10978) or `agents.salt` (SALT, arXiv
   2510.20022): same steps, prompts, generations, learning rate and seed.
3. Success rate = greedy held-out success on test layouts (seeds from 1,000,000, never
   seen in the demonstrations nor in training), every `eval_every` steps.

Writes bench/results/agents_experiment.{json,png,md}. Numbers are whatever the run gives:
with a few hundred episodes per method on a tiny model, differences of a few held-out
layouts are within noise (the .md says so).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rewardkit.sft import supervised_warm_start
from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.trainer import GRPOTrainer
from rewardkit_agents.planning import shortest_plan

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = {
    "gridworld": ROOT / "configs" / "agents" / "gridworld_grpo.yaml",
    "frozenlake": ROOT / "configs" / "agents" / "frozenlake_gigpo.yaml",
}
METHODS = {"grpo": "grpo", "gigpo": "agents.gigpo", "salt": "agents.salt"}
# Shorter episodes than the configs, so that three methods fit a shared CPU in minutes:
# the grid world without a key (walk to the door) and a 6-turn limit.
ENV_OVERRIDES: dict[str, dict[str, Any]] = {
    "gridworld": {
        "task_options": {
            "size": 4,
            "wall_density": 0.1,
            "key": False,
            "max_turns": 6,
            "max_episode_tokens": 512,
        },
    },
    "frozenlake": {
        "task_options": {
            "size": 4,
            "p": 0.8,
            "max_turns": 6,
            "is_slippery": False,
            "max_episode_tokens": 512,
        },
    },
}


def demonstrations(
    task, rows, tokenizer, max_prompt_length: int
) -> tuple[list[tuple[str, str]], int]:
    """(context text, action) pairs along the expert plan of each row, the context built
    as `multi_turn_rollout` builds it (the prompt cut to its last max_prompt_length tokens),
    and the number of rows that had a plan within the turn limit."""
    eos = tokenizer.eos_token_id
    pairs, used = [], 0
    for row in rows:
        env = task.make_environment(row)
        first = env.reset(row, seed=0)
        plan = shortest_plan(copy.deepcopy(env))
        if plan is None:  # not solvable within max_turns: no demonstration
            continue
        used += 1
        context = tokenizer(task.prompt(row))["input_ids"][-max_prompt_length:]
        context = context + tokenizer.encode(first, add_special_tokens=False)
        for action in plan:
            pairs.append((tokenizer.decode(context), action))
            result = env.step(action)
            context = context + tokenizer.encode(action, add_special_tokens=False) + [eos]
            context = context + tokenizer.encode(result.observation, add_special_tokens=False)
        if not env.success:
            raise RuntimeError(f"expert plan {plan} failed on row seed {row['seed']}")
    return pairs, used


def reference_rates(task, rows, episodes: int = 20, seed: int = 0) -> dict[str, float]:
    """Held-out references: the share of layouts solvable within the turn limit (BFS), and
    the success rate of uniformly random valid actions (`episodes` per layout)."""
    rng = random.Random(seed)
    solvable = wins = 0
    for row in rows:
        env = task.make_environment(row)
        env.reset(row, seed=0)
        solvable += shortest_plan(copy.deepcopy(env)) is not None
        for _ in range(episodes):
            trial = copy.deepcopy(env)
            while not trial.done:
                trial.step(rng.choice(trial.actions))
            wins += trial.success
    return {
        "solvable_within_turn_limit": solvable / len(rows),
        "random_valid_actions": wins / (len(rows) * episodes),
    }


def load_config(env_name: str, method: str, args, output_dir: str) -> GRPOConfig:
    overrides = {
        **ENV_OVERRIDES[env_name],
        "advantage": METHODS[method],
        "advantage_options": {},
        "max_steps": args.steps,
        "eval_every": args.eval_every,
        "eval_size": args.eval_size,
        "prompts_per_step": args.prompts_per_step,
        "num_generations": args.num_generations,
        "learning_rate": args.lr,
        "max_completion_length": 8,  # one bare action word and <eos> per turn
        "seed": args.seed,
        "output_dir": output_dir,
        "report_to": ["jsonl"],
        "log_completions_every": 0,
        "progress": False,
    }
    return GRPOConfig.load(
        CONFIGS[env_name], [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    )


def run_environment(env_name: str, args) -> dict[str, Any]:
    base = load_config(env_name, "grpo", args, "unused")
    task = resolve(base).task
    t0 = time.perf_counter()
    model, tokenizer = build_tiny_model(seed=args.seed, **base.tiny_model)
    demo_rows = task.rows("train")[: args.demos]
    pairs, used = demonstrations(task, demo_rows, tokenizer, base.max_prompt_length)
    losses = supervised_warm_start(
        model,
        tokenizer,
        pairs,
        steps=args.sft_steps,
        batch_size=16,
        learning_rate=3e-3,
        seed=args.seed,
        progress=False,
    )
    warm = copy.deepcopy(model.state_dict())
    sft_seconds = time.perf_counter() - t0
    print(
        f"[{env_name}] warm start: {len(pairs)} (context, action) pairs from {used} of "
        f"{len(demo_rows)} layouts (the others have no plan within the turn limit), "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, {sft_seconds:.0f}s",
        flush=True,
    )
    references = reference_rates(task, task.rows("test")[: args.eval_size], seed=args.seed)
    print(f"[{env_name}] held-out references: {references}", flush=True)
    runs = {}
    for method in args.methods:
        policy, _ = build_tiny_model(seed=args.seed, **base.tiny_model)
        policy.load_state_dict(warm)
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(env_name, method, args, tmp)
            t1 = time.perf_counter()
            history = GRPOTrainer(config, model=policy, tokenizer=tokenizer).train()
            seconds = time.perf_counter() - t1
        evals = [(h["step"], h["eval/accuracy"]) for h in history if "eval/accuracy" in h]
        train = [(h["step"], h["reward/total/mean"]) for h in history if "reward/total/mean" in h]
        runs[method] = {
            "advantage": config.advantage,
            "eval_steps": [s for s, _ in evals],
            "eval_success": [a for _, a in evals],
            "train_success": [r for _, r in train],
            "seconds": round(seconds, 1),
        }
        print(
            f"[{env_name}] {method:6s} held-out success {[round(a, 3) for _, a in evals]} "
            f"({seconds:.0f}s)",
            flush=True,
        )
    return {
        "config": str(CONFIGS[env_name].relative_to(ROOT)),
        "task_options": base.task_options,
        "task_options_used": ENV_OVERRIDES[env_name]["task_options"],
        "held_out_references": references,
        "demonstration_layouts": used,
        "demonstration_layouts_tried": len(demo_rows),
        "demonstration_pairs": len(pairs),
        "sft_steps": args.sft_steps,
        "sft_loss_first_last": [losses[0], losses[-1]],
        "sft_seconds": round(sft_seconds, 1),
        "runs": runs,
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = results["environments"]
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, (env_name, res) in zip(axes[0], envs.items(), strict=True):
        for method, run in res["runs"].items():
            ax.plot(run["eval_steps"], run["eval_success"], marker="o", label=method)
        ref = res.get("held_out_references")
        if ref:
            ax.axhline(ref["random_valid_actions"], color="grey", ls="--", label="random actions")
        ax.set_title(f"{env_name} (held-out layouts, greedy)")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_markdown(results: dict[str, Any], command: str, path: Path) -> None:
    a = results["args"]
    first_env = next(iter(results["environments"].values()))
    steps = next(iter(first_env["runs"].values()))["eval_steps"]
    lines = [
        "# GRPO vs GiGPO vs SALT on the built-in environments (tiny policy, CPU)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {results['machine']}; total {results['seconds']:.0f} s.",
        "",
        f"Tiny policy warm-started on BFS expert plans of {a['demos']} training layouts "
        f"({a['sft_steps']} supervised steps), then {a['steps']} GRPO steps per method: "
        f"{a['prompts_per_step']} prompts x {a['num_generations']} episodes per step, "
        f"learning rate {a['lr']}, seed {a['seed']}, same warm-started weights. Success = "
        f"greedy success on {a['eval_size']} held-out layouts (test seeds), every "
        f"{a['eval_every']} steps. Curves: `agents_experiment.png`; numbers: "
        "`agents_experiment.json`.",
        "",
        "Environments (shorter than configs/agents/ so that the run fits a shared CPU): "
        + "; ".join(
            f"{name} {res.get('task_options_used', res['task_options'])}"
            for name, res in results["environments"].items()
        )
        + ".",
        "",
        f"| environment | method | held-out success at steps {' / '.join(map(str, steps))} "
        "| mean train success | seconds |",
        "|---|---|---|---|---|",
    ]
    for env_name, res in results["environments"].items():
        ref = res.get("held_out_references")
        if ref:
            lines.append(
                f"| {env_name} | (uniformly random valid actions) | "
                f"{ref['random_valid_actions']:.2f} | | |"
            )
        for method, run in res["runs"].items():
            curve = " / ".join(f"{x:.2f}" for x in run["eval_success"])
            train = sum(run["train_success"]) / max(len(run["train_success"]), 1)
            lines.append(
                f"| {env_name} | {method} | {curve} | {train:.2f} | {run['seconds']:.0f} |"
            )
    lines += ["", "## Reading", "", results.get("reading", "(filled in by hand after the run)"), ""]
    path.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--envs", nargs="+", default=["gridworld", "frozenlake"], choices=sorted(CONFIGS)
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--eval-size", type=int, default=32)
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--num-generations", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--demos", type=int, default=64, help="training layouts with an expert plan")
    p.add_argument("--sft-steps", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "agents_experiment"))
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "args": vars(args),
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}, 1 thread",
        "environments": {},
    }
    for env_name in args.envs:
        results["environments"][env_name] = run_environment(env_name, args)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    plot(results, out.with_suffix(".png"))
    command = "OMP_NUM_THREADS=1 uv run --no-sync python bench/agents_experiment.py " + " ".join(
        sys.argv[1:]
    )
    write_markdown(results, command.strip(), out.with_suffix(".md"))
    print(f"wrote {out}.json/.png/.md in {results['seconds']:.0f}s")


if __name__ == "__main__":
    main()
