"""`rewardkit demo`: a tiny model, a supervised warm start, then GRPO, on a CPU.

1. Build a tiny causal LM from a config and a character tokenizer (no download).
2. Supervised warm start on `core.arith` two-digit addition, imitating a flawed teacher:
   it writes four worked answers per problem and, on problems with a carry out of the
   units column, three of the four forget the carry (37+45= → 72, not 82). The model
   learns the format and column addition, and copies the teacher's habit: greedy, it
   drops most carries, so it starts near the share of sums without a carry (about 55%).
3. GRPO with the exact-answer reward. Sampling still carries a quarter of the time, the
   verifier rewards exactly those samples, and the policy learns to carry: held-out
   greedy accuracy is measured before and after, and a PNG of reward and accuracy
   against steps is written. This is what RL with a verifiable reward is for: going
   past the demonstrations it was warm-started on.

Why a flawed teacher: a correct teacher gives a warm start that either already knows
addition (nothing left for RL) or, stopped early, has not yet formed the units-digit
lookup, which 200 GRPO steps cannot build (measured: 17% → 6% at lr 3e-4; see issue #3).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class DemoSettings:
    warm_start_steps: int
    grpo_steps: int
    eval_size: int


FULL = DemoSettings(warm_start_steps=800, grpo_steps=100, eval_size=200)
QUICK = DemoSettings(warm_start_steps=300, grpo_steps=30, eval_size=100)
TEACHER_ANSWERS = 4  # worked answers the teacher writes per problem
TEACHER_FORGETS = 3  # of which forget the units carry, on problems that have one


def has_units_carry(prompt: str) -> bool:
    """True for `a+b=` whose units digits sum to 10 or more."""
    a, b = prompt.rstrip("=").split("+")
    return int(a[-1]) + int(b[-1]) >= 10


def flawed_teacher_pairs(
    rows: list[dict], answers: int = TEACHER_ANSWERS, forgets: int = TEACHER_FORGETS
) -> list[tuple[str, str]]:
    """(prompt, completion) pairs from a teacher that often forgets the carry.

    Each addition row gives `answers` pairs; when the units column carries, `forgets` of
    them are the sum without that carry (a + b − 10). Other rows get correct answers.
    """
    if not 0 <= forgets <= answers:
        raise ValueError(f"forgets must be in [0, {answers}], got {forgets}")
    pairs = []
    for row in rows:
        if "+" not in row["prompt"]:
            raise ValueError(f"the flawed teacher does addition only, got {row['prompt']!r}")
        carry = has_units_carry(row["prompt"])
        for i in range(answers):
            wrong = carry and i < forgets
            pairs.append((row["prompt"], str(int(row["answer"]) - 10) if wrong else row["answer"]))
    return pairs


def warm_started_policy(config, steps: int, seed: int = 0, progress: bool = True):
    """The demo's tiny policy after its supervised warm start on the flawed teacher."""
    from rewardkit.sft import supervised_warm_start
    from rewardkit.trainer.components import load_policy, resolve

    torch.manual_seed(seed)
    task = resolve(config).task
    model, tokenizer = load_policy(config)
    pairs = flawed_teacher_pairs(task.rows("train"))
    supervised_warm_start(
        model,
        tokenizer,
        pairs,
        steps,
        batch_size=128,
        learning_rate=3e-3,
        seed=seed,
        progress=progress,
    )
    return model, tokenizer


def demo_config(settings: DemoSettings, output_dir: str, seed: int = 0):
    from rewardkit.trainer.config import GRPOConfig

    return GRPOConfig(
        model="tiny",
        tiny_model={"num_layers": 4, "hidden_size": 128, "num_heads": 4},
        task="core.arith",
        task_options={"digits": 2, "operators": "+", "train_size": 7000},
        advantage="grpo",
        prompts_per_step=16,
        num_generations=8,
        max_completion_length=5,
        temperature=1.0,
        loss_type="dapo",
        learning_rate=1e-4,  # measured: 1e-4 beats 3e-4 here; 1e-3 collapses the policy
        lr_scheduler="constant_with_warmup",  # a full-size first Adam step wrecks a tiny policy
        warmup_steps=10,
        adam_betas=[0.9, 0.99],
        max_grad_norm=1.0,
        max_steps=settings.grpo_steps,
        eval_every=max(settings.grpo_steps // 5, 1),
        eval_size=settings.eval_size,
        output_dir=output_dir,
        log_completions_every=max(settings.grpo_steps // 5, 1),
        seed=seed,
    )


def run_demo(
    quick: bool = False,
    output_dir: str = "runs/demo",
    seed: int = 0,
    warm_start_steps: int | None = None,
    grpo_steps: int | None = None,
    learning_rate: float | None = None,
) -> dict:
    from rich.console import Console

    from rewardkit.trainer.components import resolve
    from rewardkit.trainer.trainer import GRPOTrainer

    console = Console()
    settings = QUICK if quick else FULL
    settings = DemoSettings(
        warm_start_steps if warm_start_steps is not None else settings.warm_start_steps,
        grpo_steps if grpo_steps is not None else settings.grpo_steps,
        settings.eval_size,
    )
    config = demo_config(settings, output_dir, seed)
    if learning_rate is not None:
        config.learning_rate = learning_rate
    start = time.perf_counter()
    parts = resolve(config)
    console.print(
        f"[bold]rewardkit demo[/bold]: {config.task}, two-digit addition, tiny model. "
        f"Warm start: {settings.warm_start_steps} supervised steps imitating a "
        f"teacher that forgets {TEACHER_FORGETS} carries in {TEACHER_ANSWERS}."
    )
    model, tokenizer = warm_started_policy(config, settings.warm_start_steps, seed)
    warm = time.perf_counter() - start
    console.print(
        f"GRPO: {settings.grpo_steps} steps, exact-answer reward, "
        f"{config.prompts_per_step} prompts x {config.num_generations} samples"
    )
    trainer = GRPOTrainer(config, model=model, tokenizer=tokenizer, components=parts)
    history = trainer.train()
    accuracies = [h["eval/accuracy"] for h in history if "eval/accuracy" in h]
    result = {
        "accuracy_before_grpo": accuracies[0],
        "accuracy_after_grpo": accuracies[-1],
        "warm_start_seconds": round(warm, 1),
        "grpo_seconds": round(time.perf_counter() - start - warm, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "grpo_steps": settings.grpo_steps,
        "plot": str(Path(output_dir) / "training.png"),
        "metrics": str(Path(output_dir) / "metrics.jsonl"),
    }
    (Path(output_dir) / "demo_result.json").write_text(json.dumps(result, indent=2))
    console.print(
        f"held-out accuracy: [bold]{result['accuracy_before_grpo']:.1%}[/bold] after the warm "
        f"start → [bold green]{result['accuracy_after_grpo']:.1%}[/bold green] after "
        f"{settings.grpo_steps} GRPO steps  ({result['total_seconds']:.0f} s in all)"
    )
    console.print(f"plot: {result['plot']}   metrics: {result['metrics']}")
    return result
