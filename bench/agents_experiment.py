"""GRPO vs GiGPO vs SALT on the grid world and FrozenLake: tiny policy, CPU, several seeds.

    OMP_NUM_THREADS=1 uv run --no-sync python bench/agents_experiment.py run [--envs ...] [--seeds ...]
    uv run --no-sync python bench/agents_experiment.py report

Protocol, per environment and seed (the three estimators of a seed share everything but
the advantage):

1. Warm start. A tiny character-level policy (`rewardkit.tiny`, initialised from the
   seed) imitates `FlawedExpert` (rewardkit_agents.planning): shortest paths, except that
   at a junction it takes a wrong turn with probability `p_wrong`. Episodes on the
   training layouts, laid out as `multi_turn_rollout` lays them out
   (`rewardkit_agents.imitation`). The environments show the compact local view
   (`observation="local"`: the target's offset and the four neighbours), which a tiny
   model can learn to read; the world rendered as a grid it could not (issue 20).
2. RL. From that one warm-started checkpoint, `GRPOTrainer.train_step` runs `steps` steps
   with `advantage` = `grpo`, `agents.gigpo` (arXiv 2505.10978) or `agents.salt` (arXiv
   2510.20022): same prompts per step, episodes per prompt, learning rate, seed, so the
   same number of samples.
3. Held-out success: `eval_episodes` sampled episodes (temperature 1: the policy being
   trained) on each of `eval_size` test layouts (seeds from 1,000,000, never used for
   demonstrations or training), at steps 0, `eval_at` and the last, under a fixed sampling
   seed (the same random numbers for every estimator at a step); greedy success at the
   start and the end. References on the same layouts: uniformly random valid actions, the
   flawed expert itself.

`run` writes one JSON per (environment, seed, estimator) under
bench/results/agents_experiment_runs/ and skips those already there, so the experiment
can be run in pieces. `report` gathers them into bench/results/agents_experiment.{json,png}
with bootstrap CIs across seeds and layouts (`rewardkit_agents.stats`) and writes the
tables of agents_experiment.md (its "Reading" section is written by hand).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.trainer import GRPOTrainer
from rewardkit_agents.imitation import (
    expert_demonstrations,
    random_valid_success,
    rollout_success,
    warm_start,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RUNS = RESULTS / "agents_experiment_runs"
CONFIGS = {
    "gridworld": ROOT / "configs" / "agents" / "gridworld_grpo.yaml",
    "frozenlake": ROOT / "configs" / "agents" / "frozenlake_gigpo.yaml",
}
METHODS = {"grpo": "grpo", "gigpo": "agents.gigpo", "salt": "agents.salt"}
# Environments: the compact local view; a turn limit with slack for one or two wrong turns.
TASK_OPTIONS: dict[str, dict[str, Any]] = {
    "gridworld": {
        "size": 4,
        "wall_density": 0.1,
        "key": False,
        "max_turns": 6,
        "max_episode_tokens": 768,
        "observation": "local",
    },
    "frozenlake": {
        "size": 4,
        "p": 0.8,
        "max_turns": 8,
        "is_slippery": False,
        "max_episode_tokens": 768,
        "observation": "local",
    },
}
# wrong-turn probability of the flawed expert, chosen so that it succeeds about half the time
P_WRONG = {"gridworld": 0.4, "frozenlake": 0.25}


def load_config(env_name: str, method: str, args, seed: int, output_dir: str) -> GRPOConfig:
    overrides = {
        "task_options": TASK_OPTIONS[env_name],
        "advantage": METHODS[method],
        "advantage_options": {},
        "max_steps": args.steps,
        "eval_every": 0,
        "prompts_per_step": args.prompts_per_step,
        "num_generations": args.num_generations,
        "learning_rate": args.lr,
        "lr_scheduler": "constant_with_warmup",
        "warmup_steps": 10,
        "max_completion_length": 8,  # one bare action word and <eos> per turn
        "seed": seed,
        "output_dir": output_dir,
        "report_to": [],
        "log_completions_every": 0,
        "progress": False,
    }
    return GRPOConfig.load(
        CONFIGS[env_name], [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    )


def held_out(trainer, rows, episodes: int, seed: int, greedy: bool) -> dict[str, list[float]]:
    """Per-layout sampled (and, with `greedy`, greedy) success, under a fixed sampling seed
    that leaves the training random stream alone."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        result = {"sampled": rollout_success(trainer, rows, episodes)}
        if greedy:
            result["greedy"] = rollout_success(trainer, rows, 1, greedy=True)
    return result


def run_seed(env_name: str, seed: int, args) -> None:
    base = load_config(env_name, "grpo", args, seed, "unused")
    task = resolve(base).task
    test_rows = task.rows("test")[: args.eval_size]
    runs = Path(args.runs)
    todo = [m for m in args.methods if not (runs / f"{env_name}_s{seed}_{m}.json").exists()]
    if not todo:
        return
    t0 = time.perf_counter()
    model, tokenizer = build_tiny_model(seed=seed, **base.tiny_model)
    demos = expert_demonstrations(
        task,
        task.rows("train")[: args.demo_layouts],
        tokenizer,
        base.max_prompt_length,
        P_WRONG[env_name],
        episodes_per_row=args.demo_episodes,
        seed=seed,
    )
    losses = warm_start(
        model, tokenizer, demos.examples, args.sft_steps, batch_size=args.sft_batch, seed=seed
    )
    warm = copy.deepcopy(model.state_dict())
    sft_seconds = time.perf_counter() - t0
    print(
        f"[{env_name} s{seed}] warm start: {demos.episodes} expert episodes, {demos.actions} "
        f"actions (expert success {demos.expert_success:.2f}), "
        f"loss {losses[0]:.3f} -> {sum(losses[-20:]) / 20:.3f}, {sft_seconds:.0f}s",
        flush=True,
    )
    warm_info = {
        "demonstration_actions": demos.actions,
        "expert_episodes": demos.episodes,
        "expert_success_train": demos.expert_success,
        "wrong_turns_per_action": demos.wrong_turns / max(demos.actions, 1),
        "sft_loss_first_last20": [losses[0], sum(losses[-20:]) / 20],
        "sft_seconds": round(sft_seconds, 1),
    }
    for method in todo:
        policy, _ = build_tiny_model(seed=seed, **base.tiny_model)
        policy.load_state_dict(warm)
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(env_name, method, args, seed, tmp)
            trainer = GRPOTrainer(config, model=policy, tokenizer=tokenizer)
            t1 = time.perf_counter()
            evals = {0: held_out(trainer, test_rows, args.eval_episodes, seed, greedy=True)}
            train_success, step_seconds = [], []
            with trainer.scorer:
                while trainer.step < args.steps:
                    metrics = trainer.train_step()
                    train_success.append(metrics["reward/total/mean"])
                    step_seconds.append(metrics["time/step"])
                    if trainer.step in args.eval_at or trainer.step == args.steps:
                        evals[trainer.step] = held_out(
                            trainer,
                            test_rows,
                            args.eval_episodes,
                            seed + trainer.step,
                            greedy=trainer.step == args.steps,
                        )
            seconds = time.perf_counter() - t1
        steps = sorted(evals)
        record = {
            "env": env_name,
            "seed": seed,
            "method": method,
            "advantage": config.advantage,
            "eval_steps": steps,
            "held_out_sampled": [evals[s]["sampled"] for s in steps],
            "held_out_greedy_start_end": [evals[0]["greedy"], evals[steps[-1]]["greedy"]],
            "train_success": train_success,
            "step_seconds_mean": sum(step_seconds) / max(len(step_seconds), 1),
            "seconds": round(seconds, 1),
            "warm_start": warm_info,
            "args": vars(args),
            "task_options": TASK_OPTIONS[env_name],
            "p_wrong": P_WRONG[env_name],
        }
        runs.mkdir(parents=True, exist_ok=True)
        (runs / f"{env_name}_s{seed}_{method}.json").write_text(json.dumps(record))
        mean = [round(sum(v) / len(v), 3) for v in record["held_out_sampled"]]
        print(f"[{env_name} s{seed}] {method:6s} held-out {mean} ({seconds:.0f}s)", flush=True)


def references(env_name: str, args) -> dict[str, Any]:
    """Random valid actions and the flawed expert on the held-out layouts."""
    base = load_config(env_name, "grpo", args, 0, "unused")
    task = resolve(base).task
    rows = task.rows("test")[: args.eval_size]
    _, tokenizer = build_tiny_model(seed=0, **base.tiny_model)
    expert = expert_demonstrations(
        task, rows, tokenizer, base.max_prompt_length, P_WRONG[env_name], episodes_per_row=20
    )
    return {
        "random_valid_actions": random_valid_success(task, rows, 20),
        "flawed_expert": expert.expert_success,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["run", "report"])
    p.add_argument("--envs", nargs="+", default=list(CONFIGS), choices=sorted(CONFIGS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument(
        "--eval-at", nargs="+", type=int, default=[10, 25, 50, 100, 150], help="(and 0, last)"
    )
    p.add_argument("--eval-size", type=int, default=64, help="held-out layouts")
    p.add_argument("--eval-episodes", type=int, default=1, help="sampled episodes per layout")
    p.add_argument("--prompts-per-step", type=int, default=1)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--demo-layouts", type=int, default=256, help="training layouts")
    p.add_argument("--demo-episodes", type=int, default=2, help="expert episodes per layout")
    p.add_argument("--sft-steps", type=int, default=300)
    p.add_argument("--sft-batch", type=int, default=16, help="expert episodes per SFT step")
    p.add_argument("--runs", default=str(RUNS), help="folder of the per-run JSON files")
    args = p.parse_args()
    torch.set_num_threads(1)
    runs = Path(args.runs)
    if args.what == "run":
        for env_name in args.envs:
            for seed in args.seeds:
                run_seed(env_name, seed, args)
        return
    from agents_report import report  # bench/agents_report.py: CIs, PNG, tables

    command = "OMP_NUM_THREADS=1 uv run --no-sync python bench/agents_experiment.py " + " ".join(
        sys.argv[1:]
    )
    report(
        runs,
        RESULTS / "agents_experiment",
        {e: references(e, args) for e in args.envs},
        command,
        f"{platform.machine()} CPU, torch {torch.__version__}, 1 thread",
    )


if __name__ == "__main__":
    main()
