"""rewardkit's GRPOTrainer vs TRL's GRPOTrainer at a real size: SmolLM2-135M-Instruct.

Same model (the packaged `smollm2-135m-instruct`, converted once, float32), same chat
prompts (core.chat_arith two-digit sums through the chat template), same reward
(core.last_number), group size, completion length, temperature, loss type (DAPO), learning
rate, Adam settings, β = 0, seed; full fine-tune and LoRA (r 16, α 32, all linear layers).
rewardkit runs with `share_prompts` (each chat prompt once per group in forward/backward;
`--ablation` adds rewardkit's padded layout) and, with LoRA, generates with the adapters
merged (`merge_lora_for_generation`; `--unmerged` adds a run without). Both run in float32 without gradient checkpointing (TRL's defaults, bf16 autocast and
gradient checkpointing, are switched off: rewardkit does neither here, and they change the
work done). Each (trainer, mode) runs in its own subprocess with the same torch thread
count, alternating the order, so each peak RSS is its own. Reported per trainer and mode:
median step time (first step excluded: it warms caches), completion tokens per second of
step time, peak RSS, and for rewardkit the time split (generate, forward/backward,
optimizer, scoring, overhead = step - generate - forward/backward - optimizer).

    uv run --no-sync python bench/grpo_real_vs_trl.py                     # 4 x 8 x 64, 4 steps
    uv run --no-sync python bench/grpo_real_vs_trl.py --prompts 8 --max-completion-length 128
    uv run --no-sync python bench/grpo_real_vs_trl.py --modes lora --rounds 2   # ABBA order
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

ROOT = Path(__file__).resolve().parent


def settings(args) -> dict:
    return dict(
        prompts=args.prompts,
        generations=args.generations,
        max_completion_length=args.max_completion_length,
        temperature=1.0,
        loss_type="dapo",
        beta=0.0,
        seed=0,
        steps=args.steps,
        threads=args.threads,
        lr_full=1e-5,
        lr_lora=1e-4,
        lora_r=16,
        lora_alpha=32,
    )


def task():
    from rewardkit.tasks.chat_arith import ChatArithmetic

    return ChatArithmetic(digits=2, operators="+", train_size=2000, test_size=16)


def run_rewardkit(
    model_dir: str, s: dict, lora: bool, share_prompts: bool = True, merge_lora: bool = True
) -> dict:
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    config = GRPOConfig(
        model=model_dir,
        task="core.chat_arith",
        task_options={"digits": 2, "operators": "+", "train_size": 2000, "test_size": 16},
        prompts_per_step=s["prompts"],
        num_generations=s["generations"],
        max_completion_length=s["max_completion_length"],
        temperature=s["temperature"],
        learning_rate=s["lr_lora"] if lora else s["lr_full"],
        loss_type=s["loss_type"],
        beta=s["beta"],
        seed=s["seed"],
        max_steps=s["steps"],
        report_to=[],
        progress=False,
        log_completions_every=0,
        output_dir=tempfile.mkdtemp(),
        adam_betas=[0.9, 0.999],
        max_grad_norm=1.0,
        lora_r=s["lora_r"] if lora else 0,
        lora_alpha=s["lora_alpha"],
        share_prompts=share_prompts,
        merge_lora_for_generation=merge_lora,
    )
    trainer = GRPOTrainer(config)
    steps, cpu = [], []
    for _ in range(s["steps"]):
        c0 = time.process_time()
        steps.append(trainer.train_step())
        cpu.append(time.process_time() - c0)
    n = s["prompts"] * s["generations"]
    return {
        "step_times": [m["time/step"] for m in steps],
        "step_cpu_times": cpu,
        "completion_tokens": [m["completion_length"] * n for m in steps],
        "breakdown": {
            k: [m[f"time/{k}"] for m in steps]
            for k in ("generate", "score", "forward_backward", "optimizer")
        },
        "loss": [m["loss"] for m in steps],
    }


def run_trl(model_dir: str, s: dict, lora: bool) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.interop import as_trl_reward_func
    from rewardkit.tasks.chat_arith import last_number

    t = task()
    rows = [{"prompt": t.prompt(r), "answer": r["answer"]} for r in t.rows("train")]
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=s["prompts"] * s["generations"],
        gradient_accumulation_steps=1,
        num_generations=s["generations"],
        max_completion_length=s["max_completion_length"],
        temperature=s["temperature"],
        learning_rate=s["lr_lora"] if lora else s["lr_full"],
        loss_type=s["loss_type"],
        beta=s["beta"],
        seed=s["seed"],
        max_steps=s["steps"],
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        disable_dropout=True,
        dataloader_num_workers=0,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    peft_config = (
        LoraConfig(
            r=s["lora_r"],
            lora_alpha=s["lora_alpha"],
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        if lora
        else None
    )
    record: dict = {"step_times": [], "step_cpu_times": []}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kw):
            record["step_times"].append(time.perf_counter() - self.t)
            record["step_cpu_times"].append(time.process_time() - self.c)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[as_trl_reward_func(last_number)],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[Clock()],
        peft_config=peft_config,
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    n = s["prompts"] * s["generations"]
    record["completion_tokens"] = [h["completions/mean_length"] * n for h in logs]
    record["loss"] = [h.get("loss") for h in logs]
    return record


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    s = settings(args)
    if args.worker == "trl":
        out = run_trl(args.model_dir, s, args.mode == "lora")
    else:
        out = run_rewardkit(
            args.model_dir,
            s,
            args.mode == "lora",
            share_prompts=args.worker != "rewardkit_padded",
            merge_lora=args.worker != "rewardkit_unmerged",
        )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch_threads"] = torch.get_num_threads()
    Path(args.out).write_text(json.dumps(out))


def summarize(r: dict) -> dict:
    times = r["step_times"][1:]  # the first step warms caches
    tokens = r["completion_tokens"][1:]
    out = {
        "median_step_s": statistics.median(times),
        "step_times_s": r["step_times"],
        "completion_tokens_per_step": r["completion_tokens"],
        "completion_tokens_per_s": sum(tokens) / sum(times),
        # CPU seconds of the process per step: what a step costs, whatever else shares the
        # cores (with one thread; wall time also counts the wait for a core)
        "median_step_cpu_s": statistics.median(r["step_cpu_times"][1:]),
        "step_cpu_times_s": r["step_cpu_times"],
        "completion_tokens_per_cpu_s": sum(tokens) / sum(r["step_cpu_times"][1:]),
        "peak_rss_mb": r["peak_rss_mb"],
        "torch_threads": r["torch_threads"],
    }
    if "breakdown" in r:
        parts = {k: statistics.mean(v[1:]) for k, v in r["breakdown"].items()}
        mean_step = statistics.mean(times)
        out["breakdown_mean_s"] = parts
        out["overhead_s"] = (
            mean_step - parts["generate"] - parts["forward_backward"] - parts["optimizer"]
        )
        out["split_fraction"] = {k: v / mean_step for k, v in parts.items()}
        out["split_fraction"]["overhead"] = out["overhead_s"] / mean_step
    return out


def pooled_ratio(rounds: list[dict], mode: str) -> float:
    """rewardkit's completion tokens per CPU-second over TRL's, each pooled over all rounds
    (all measured steps' tokens over all their CPU seconds)."""

    def rate(name: str) -> float:
        runs = [rnd[f"{name}-{mode}"] for rnd in rounds]
        tokens = sum(sum(run["completion_tokens_per_step"][1:]) for run in runs)
        return tokens / sum(sum(run["step_cpu_times_s"][1:]) for run in runs)

    return rate("rewardkit") / rate("trl")


def machine() -> dict:
    import torch
    import trl

    cpu = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        platform.processor(),
    )
    flags = next(
        (
            x.split(":", 1)[1].split()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("flags")
        ),
        [],
    )
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "bf16_isa": [f for f in flags if "bf16" in f or "amx" in f],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "trl": trl.__version__,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--max-completion-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--modes", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    p.add_argument("--name", default="grpo_real_vs_trl")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat rewardkit and TRL this many times, swapping their order each round",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also run rewardkit without share_prompts (padded micro-batches)",
    )
    p.add_argument(
        "--unmerged",
        action="store_true",
        help="also run rewardkit (share_prompts) generating through unmerged LoRA adapters "
        "(merge_lora_for_generation: false; LoRA mode only)",
    )
    p.add_argument(
        "--worker", choices=["rewardkit", "rewardkit_padded", "rewardkit_unmerged", "trl"]
    )
    p.add_argument("--mode", choices=["lora", "full"])
    p.add_argument("--model-dir")
    p.add_argument("--out")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    from rewardkit.models import resolve_model

    model_dir = resolve_model("smollm2-135m-instruct")
    work = Path(tempfile.mkdtemp(prefix="grpo_real_vs_trl_"))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    result: dict = {
        "command": "uv run --no-sync python bench/grpo_real_vs_trl.py " + " ".join(sys.argv[1:]),
        "settings": settings(args),
        "machine": machine(),
        "runs": {},
    }
    loads = []
    result["rounds"] = [{} for _ in range(args.rounds)]
    for k, mode in enumerate(args.modes):
        plan = []  # (round, worker): rewardkit and TRL swap places every round
        for r in range(args.rounds):
            pair = ["rewardkit", "trl"] if (k + r) % 2 == 0 else ["trl", "rewardkit"]
            plan += [(r, name) for name in pair]
        if args.ablation:
            plan.append((0, "rewardkit_padded"))
        if args.unmerged and mode == "lora":
            plan.append((0, "rewardkit_unmerged"))
        for r, name in plan:
            out = work / f"{name}-{mode}-{r}.json"
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--mode",
                mode,
                "--model-dir",
                model_dir,
                "--out",
                str(out),
                "--prompts",
                str(args.prompts),
                "--generations",
                str(args.generations),
                "--steps",
                str(args.steps),
                "--max-completion-length",
                str(args.max_completion_length),
                "--threads",
                str(args.threads),
            ]
            load = os.getloadavg()
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env)
            wall = time.perf_counter() - t
            loads.append(
                {
                    "run": f"{name}-{mode}",
                    "loadavg_before": load,
                    "loadavg_after": os.getloadavg(),
                    "wall_s": wall,
                }
            )
            print(
                f"{mode} {name}: {wall:.0f} s, load {load[0]:.2f} -> {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            summary = summarize(json.loads(out.read_text()))
            summary["round"] = r
            result["rounds"][r][f"{name}-{mode}"] = summary
            if r == 0:
                result["runs"][f"{name}-{mode}"] = summary
    result["load"] = loads
    result["ratios"] = {}
    for mode in args.modes:
        ours, theirs = result["runs"][f"rewardkit-{mode}"], result["runs"][f"trl-{mode}"]
        result["ratios"][mode] = {
            "tokens_per_s_vs_trl": ours["completion_tokens_per_s"]
            / theirs["completion_tokens_per_s"],
            "step_time_speedup_vs_trl": theirs["median_step_s"] / ours["median_step_s"],
            "tokens_per_cpu_s_vs_trl": ours["completion_tokens_per_cpu_s"]
            / theirs["completion_tokens_per_cpu_s"],
            "peak_rss_vs_trl": ours["peak_rss_mb"] / theirs["peak_rss_mb"],
        }
        for variant in ("padded", "unmerged"):
            other = result["runs"].get(f"rewardkit_{variant}-{mode}")
            if other:
                result["ratios"][mode][f"{variant}_tokens_per_s_vs_trl"] = (
                    other["completion_tokens_per_s"] / theirs["completion_tokens_per_s"]
                )
                result["ratios"][mode][f"{variant}_tokens_per_cpu_s_vs_trl"] = (
                    other["completion_tokens_per_cpu_s"] / theirs["completion_tokens_per_cpu_s"]
                )
        if args.rounds > 1:  # CPU-time ratio per round, and over all rounds pooled
            per_round = [
                rnd[f"rewardkit-{mode}"]["completion_tokens_per_cpu_s"]
                / rnd[f"trl-{mode}"]["completion_tokens_per_cpu_s"]
                for rnd in result["rounds"]
            ]
            result["ratios"][mode]["tokens_per_cpu_s_vs_trl_per_round"] = per_round
            result["ratios"][mode]["tokens_per_cpu_s_vs_trl_pooled"] = pooled_ratio(
                result["rounds"], mode
            )
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result["ratios"], indent=1))


if __name__ == "__main__":
    main()
