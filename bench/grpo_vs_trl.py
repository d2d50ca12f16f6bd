"""rewardkit's GRPOTrainer vs TRL's GRPOTrainer on the same tiny model, side by side.

Same warm-started model (the demo's: 4 layers, 128 wide, character tokenizer, supervised
on a teacher that forgets most carries; see rewardkit.demo), same prompts (core.arith
two-digit addition), group size, lengths, loss type, learning rate and seed.
Each trainer runs in its own subprocess (so peak memory is its own), alternating
rewardkit, TRL, rewardkit, TRL ... in one invocation. Reported per trainer: median step
time, completion tokens/s, peak RSS, held-out greedy accuracy against wall time (eval
time excluded, both evaluated by the same greedy routine), and for rewardkit the time
breakdown and framework overhead = step − (generation + forward/backward + optimizer).

    uv run --no-sync python bench/grpo_vs_trl.py                # full: 200 steps, 2 rounds
    uv run --no-sync python bench/grpo_vs_trl.py --steps 20 --rounds 1 --warm-steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
SETTINGS = dict(
    prompts=16,
    generations=8,
    max_completion_length=5,
    learning_rate=1e-4,
    loss_type="dapo",
    temperature=1.0,
    seed=0,
    beta=0.0,
)


def warm_start(model_dir: Path, steps: int) -> None:
    from rewardkit.demo import FULL, demo_config, warm_started_policy

    config = demo_config(FULL, tempfile.mkdtemp())
    model, tok = warm_started_policy(config, steps, seed=SETTINGS["seed"], progress=False)
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)


class GreedyEval:
    """The same held-out greedy accuracy for both trainers (exact answer on 200 problems)."""

    def __init__(self, tokenizer, size: int = 200):
        from rewardkit.tasks.arith import Arithmetic

        self.rows = Arithmetic(digits=2, operators="+").rows("test")[:size]
        self.tokenizer = tokenizer

    @torch.no_grad()
    def __call__(self, model) -> float:
        from rewardkit.tasks.arith import exact_answer
        from rewardkit.trainer.rollout import HFGenerate, single_turn_rollout

        backend = HFGenerate(lambda: model, self.tokenizer)
        ids = [self.tokenizer(r["prompt"])["input_ids"] for r in self.rows]
        samples = single_turn_rollout(
            backend,
            self.tokenizer,
            self.rows,
            ids,
            [r["prompt"] for r in self.rows],
            1,
            SETTINGS["max_completion_length"],
            greedy=True,
        )
        return sum(o.score for o in exact_answer(samples)) / len(samples)


def run_rewardkit(model_dir: str, steps: int, eval_every: int, trl_defaults: bool = False) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    s = SETTINGS
    config = GRPOConfig(
        model=model_dir,
        task="core.arith",
        task_options={"digits": 2, "operators": "+", "train_size": 7000},
        rewards=[{"name": "core.exact_answer"}],
        prompts_per_step=s["prompts"],
        num_generations=s["generations"],
        max_completion_length=s["max_completion_length"],
        learning_rate=s["learning_rate"],
        loss_type=s["loss_type"],
        beta=s["beta"],
        temperature=s["temperature"],
        seed=s["seed"],
        max_steps=steps,
        report_to=[],
        progress=False,
        log_completions_every=0,
        output_dir=tempfile.mkdtemp(),
        adam_betas=[0.9, 0.999],
        max_grad_norm=1.0,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer)
    evaluate = GreedyEval(tokenizer)
    steps_out, curve, wall = [], [(0.0, evaluate(trainer.model))], 0.0
    cpu = []
    while trainer.step < steps:
        c0 = time.process_time()
        m = trainer.train_step()
        cpu.append(time.process_time() - c0)
        wall += m["time/step"]
        steps_out.append(m)
        if trainer.step % eval_every == 0:
            curve.append((wall, evaluate(trainer.model)))
    tokens = [m["completion_length"] * s["prompts"] * s["generations"] for m in steps_out]
    return {
        "step_times": [m["time/step"] for m in steps_out],
        "step_cpu_times": cpu,
        "completion_tokens": tokens,
        "breakdown": {
            k: [m[f"time/{k}"] for m in steps_out]
            for k in ("generate", "score", "forward_backward", "optimizer")
        },
        "curve": curve,
    }


def run_trl(model_dir: str, steps: int, eval_every: int, trl_defaults: bool = False) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.interop import as_trl_reward_func
    from rewardkit.tasks.arith import Arithmetic, exact_answer

    s = SETTINGS
    rows = Arithmetic(digits=2, operators="+", train_size=7000).rows("train")
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=s["prompts"] * s["generations"],
        gradient_accumulation_steps=1,
        num_generations=s["generations"],
        max_completion_length=s["max_completion_length"],
        learning_rate=s["learning_rate"],
        loss_type=s["loss_type"],
        beta=s["beta"],
        temperature=s["temperature"],
        seed=s["seed"],
        max_steps=steps,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        disable_dropout=True,
        dataloader_num_workers=0,
        # TRL's defaults are bf16 autocast and gradient checkpointing; rewardkit does neither
        # here (float32, no recomputation). --trl-defaults keeps TRL's (the old, unequal bench)
        **({} if trl_defaults else {"bf16": False, "gradient_checkpointing": False}),
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    evaluate = GreedyEval(tokenizer)
    record: dict = {"step_times": [], "step_cpu_times": [], "curve": [(0.0, evaluate(model))]}

    class Clock(TrainerCallback):
        wall = 0.0

        def on_step_begin(self, args, state, control, **kw):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, model=None, **kw):
            record["step_cpu_times"].append(time.process_time() - self.c)
            dt = time.perf_counter() - self.t
            self.wall += dt
            record["step_times"].append(dt)
            if state.global_step % eval_every == 0:
                record["curve"].append((self.wall, evaluate(model)))

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[as_trl_reward_func(exact_answer)],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.train()
    lengths = [
        h["completions/mean_length"]
        for h in trainer.state.log_history
        if "completions/mean_length" in h
    ]
    record["completion_tokens"] = [n * s["prompts"] * s["generations"] for n in lengths]
    return record


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(SETTINGS["seed"])
    run = run_rewardkit if args.worker == "rewardkit" else run_trl
    out = run(args.model_dir, args.steps, args.eval_every, args.trl_defaults)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch_threads"] = torch.get_num_threads()
    Path(args.out).write_text(json.dumps(out))


def summarize(runs: list[dict]) -> dict:
    times = [t for r in runs for t in r["step_times"][1:]]  # first step warms caches
    tokens = sum(sum(r["completion_tokens"]) for r in runs)
    total_time = sum(sum(r["step_times"]) for r in runs)
    cpu = [t for r in runs for t in r["step_cpu_times"][1:]]
    out = {
        "median_step_s": statistics.median(times),
        "mean_step_s": statistics.mean(times),
        "completion_tokens_per_s": tokens / total_time,
        # CPU seconds of the trainer's process per step (one thread): what a step costs,
        # whatever else runs on the machine; wall time also counts waiting for a core
        "median_step_cpu_s": statistics.median(cpu),
        "completion_tokens_per_cpu_s": tokens / sum(sum(r["step_cpu_times"]) for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "accuracy_curves": [r["curve"] for r in runs],
        "final_accuracy": [r["curve"][-1][1] for r in runs],
        "start_accuracy": [r["curve"][0][1] for r in runs],
    }
    if "breakdown" in runs[0]:
        parts = {
            k: statistics.mean(v for r in runs for v in r["breakdown"][k][1:])
            for k in runs[0]["breakdown"]
        }
        out["breakdown_mean_s"] = parts
        model_time = parts["generate"] + parts["forward_backward"] + parts["optimizer"]
        out["framework_overhead_s"] = out["mean_step_s"] - model_time
        out["framework_overhead_fraction"] = out["framework_overhead_s"] / out["mean_step_s"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--warm-steps", type=int, default=800)
    p.add_argument("--threads", type=int, default=1, help="torch threads of each trainer")
    p.add_argument(
        "--trl-defaults",
        action="store_true",
        help="leave TRL's bf16 autocast and gradient checkpointing on (unequal work)",
    )
    p.add_argument("--name", default="grpo_vs_trl", help="results file stem")
    p.add_argument("--worker", choices=["rewardkit", "trl"])
    p.add_argument("--model-dir", help="the warm-started model (made there if missing)")
    p.add_argument("--out")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    work = Path(tempfile.mkdtemp(prefix="grpo_vs_trl_"))
    model_dir = Path(args.model_dir) if args.model_dir else work / "warm"
    if not (model_dir / "config.json").exists():  # --model-dir: warm start once, reuse after
        t = time.perf_counter()
        warm_start(model_dir, args.warm_steps)
        print(f"warm start: {time.perf_counter() - t:.0f} s", flush=True)
    runs: dict[str, list[dict]] = {"rewardkit": [], "trl": []}
    loads: list[dict] = []
    for k in range(args.rounds):
        order = ["rewardkit", "trl"] if k % 2 == 0 else ["trl", "rewardkit"]
        for name in order:
            out = work / f"{name}-{k}.json"
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--model-dir",
                str(model_dir),
                "--steps",
                str(args.steps),
                "--eval-every",
                str(args.eval_every),
                "--out",
                str(out),
                "--threads",
                str(args.threads),
            ]
            cmd += ["--trl-defaults"] if args.trl_defaults else []
            t, load = time.perf_counter(), os.getloadavg()
            subprocess.run(
                cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            )
            loads.append(
                {"run": f"{name}-{k}", "loadavg_before": load, "loadavg_after": os.getloadavg()}
            )
            print(
                f"round {k} {name}: {time.perf_counter() - t:.0f} s, load {load[0]:.2f}", flush=True
            )
            runs[name].append(json.loads(out.read_text()))
    ours, trl = summarize(runs["rewardkit"]), summarize(runs["trl"])
    result = {
        "command": "uv run --no-sync python bench/grpo_vs_trl.py " + " ".join(sys.argv[1:]),
        "settings": {
            **SETTINGS,
            "steps": args.steps,
            "rounds": args.rounds,
            "warm_start_steps": args.warm_steps,
            "model": "llama 4x128, char tokenizer",
            "threads_per_trainer": args.threads,
            "trl_precision": "TRL defaults (bf16 autocast, gradient checkpointing)"
            if args.trl_defaults
            else "float32, no gradient checkpointing (as rewardkit)",
        },
        "machine": machine(),
        "load": loads,
        "rewardkit": ours,
        "trl": trl,
        "speedup_step_time": trl["median_step_s"] / ours["median_step_s"],
        "tokens_per_s_ratio": ours["completion_tokens_per_s"] / trl["completion_tokens_per_s"],
        "speedup_step_cpu_time": trl["median_step_cpu_s"] / ours["median_step_cpu_s"],
        "tokens_per_cpu_s_ratio": ours["completion_tokens_per_cpu_s"]
        / trl["completion_tokens_per_cpu_s"],
    }
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(runs, ROOT / "results" / f"{args.name}.png")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rewardkit", "trl")}, indent=2))


def machine() -> dict:
    """CPU model and its bf16 instructions: bf16 autocast is fast only where the CPU has them."""
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "")
    flags = next((x.split(":", 1)[1].split() for x in info if x.startswith("flags")), [])
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "bf16_isa": [f for f in flags if "bf16" in f or "amx" in f],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "trl": __import__("trl").__version__,
    }


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color in (("rewardkit", "tab:blue"), ("trl", "tab:orange")):
        for i, r in enumerate(runs[name]):
            xs, ys = zip(*r["curve"])
            ax.plot(xs, ys, "o-", color=color, alpha=0.8, label=name if i == 0 else None)
    ax.set_xlabel("GRPO wall time (s, evaluation excluded)")
    ax.set_ylabel("held-out greedy accuracy")
    ax.set_title("Two-digit addition, same warm start")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
