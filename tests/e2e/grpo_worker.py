"""One rank of a distributed GRPO run on the tiny model; launched by test_distributed.py.

    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 tests/e2e/grpo_worker.py OUT
    accelerate launch --config_file configs/accelerate/zero2.yaml --num_processes 2 \
        tests/e2e/grpo_worker.py OUT

Runs GRPOTrainer.train() for a few steps (with its evaluations and final checkpoint, in
OUT/run) and writes OUT/rank{r}.json: rank, world size, accelerate's
distributed type, the prompt rows it trained on, per step the local and global token
counts of the DAPO normaliser, the sum of its loss weights, its number of micro-batches and
of micro-batch losses (one per backward), the optimizer steps really taken, and sha256
digests of the initial and final weights and the norm of their difference.

Rank 0 gets a small micro-batch token budget and rank 1 a large one, so the ranks cut their
batches into different numbers of micro-batches and the trainer must pad rank 1 with
zero-weight micro-batches to keep the backward calls equal (DDP and ZeRO need that).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

import rewardkit.trainer.trainer as trainer_module
from rewardkit.registry import REWARDS
from rewardkit.rewards import per_sample
from rewardkit.trainer import distributed as dist
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.trainer import GRPOTrainer

STEPS = 3
NUM_ITERATIONS = 2  # two optimizer steps per GRPO step: checks one real step per iteration


@per_sample(name="test.length")
def completion_length(sample):
    """A reward a random model's samples differ on, so advantages are non-zero."""
    return float(len(sample.completion))


def flat_weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().float().reshape(-1).cpu() for p in model.parameters()])


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()


def base_optimizer(opt) -> torch.optim.Optimizer:
    """The torch AdamW under accelerate's and DeepSpeed's wrappers (ZeRO steps it on its
    own shard), so a post-step hook counts the optimizer steps really taken."""
    while not isinstance(opt, torch.optim.Optimizer) or hasattr(opt, "optimizer"):
        opt = opt.optimizer
    return opt


def main(out: Path) -> None:
    if "test.length" not in REWARDS._builtins:
        REWARDS.register("test.length", completion_length)
    rank = dist.rank()  # the launcher's RANK: the process group does not exist yet
    config = GRPOConfig(
        model="tiny",
        tiny_model={"num_layers": 1, "hidden_size": 32, "num_heads": 2},
        task="core.arith",
        rewards=[{"name": "core.exact_answer"}, {"name": "test.length", "weight": 0.1}],
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=6,
        loss_type="dapo",
        num_iterations=NUM_ITERATIONS,
        learning_rate=1e-2,
        lr_scheduler="constant_with_warmup",  # an LR that moves at every scheduler step
        warmup_steps=100,
        max_grad_norm=1.0,
        micro_batch_tokens=16 if rank == 0 else 4096,
        packing=False,
        max_steps=STEPS,
        eval_size=2,
        output_dir=str(out / "run"),
        report_to=["jsonl"],
        log_completions_every=0,
        progress=False,
    )
    trainer = GRPOTrainer(config)
    model = trainer.accelerator.unwrap_model(trainer.model)
    initial = flat_weights(model)

    record: dict = {"rows": [], "steps": []}
    step: dict = {}

    take = trainer.stream.take

    def take_and_record(n: int) -> list[int]:
        rows = take(n)
        record["rows"] += rows
        return rows

    trainer.stream.take = take_and_record

    micro_batches = trainer_module.make_micro_batches
    token_weights = trainer.loss.weights
    token_loss = trainer.loss.token_loss

    def micro_batches_and_record(*args, **kwargs):
        mbs = micro_batches(*args, **kwargs)
        step["local_micro_batches"] = len(mbs)
        return mbs

    def weights_and_record(mask, max_len, global_tokens=None, num_processes=1):
        w = token_weights(mask, max_len, global_tokens, num_processes)
        step["local_tokens"] = float(mask.sum())
        step["global_tokens"] = float(global_tokens)
        step["num_processes"] = num_processes
        step["weight_sum"] = float(w.sum())
        return w

    def loss_and_record(*args, **kwargs):
        step["losses"] = step.get("losses", 0) + 1  # one per micro-batch backward
        return token_loss(*args, **kwargs)

    trainer_module.make_micro_batches = micro_batches_and_record
    trainer.loss.weights = weights_and_record
    trainer.loss.token_loss = loss_and_record
    optimizer_steps = [0]
    base_optimizer(trainer.optimizer).register_step_post_hook(
        lambda *_: optimizer_steps.__setitem__(0, optimizer_steps[0] + 1)
    )

    train_step = trainer.train_step

    def train_step_and_record() -> dict[str, float]:
        step.clear()
        metrics = train_step()
        record["steps"].append({**step, "loss": metrics["loss"], "lr": metrics["lr"]})
        return metrics

    trainer.train_step = train_step_and_record
    history = trainer.train()  # evaluates, trains STEPS steps, evaluates, saves a checkpoint
    record["eval_accuracy"] = [h["eval/accuracy"] for h in history if "eval/accuracy" in h]

    final = flat_weights(model)
    update_norm = float((final - initial).norm())
    record.update(
        rank=dist.rank(),
        world=dist.world(),
        distributed_type=str(trainer.accelerator.distributed_type),
        accelerate_num_processes=trainer.accelerator.num_processes,
        engine=type(trainer.model).__name__,
        zero_stage=_zero_stage(trainer.model),
        steps_run=STEPS,
        num_iterations=NUM_ITERATIONS,
        optimizer_steps=optimizer_steps[0],
        scheduler_steps=trainer.scheduler.scheduler.last_epoch,
        engine_gradient_accumulation_steps=_engine_accumulation(trainer.model),
        accelerator_gradient_accumulation_steps=trainer.accelerator.gradient_accumulation_steps,
        initial_sha256=digest(initial),
        final_sha256=digest(final),
        num_weights=final.numel(),
        update_norm=update_norm,
    )
    (out / f"rank{rank}.json").write_text(json.dumps(record, indent=1))
    dist.barrier()


def _zero_stage(model) -> int | None:
    stage = getattr(model, "zero_optimization_stage", None)
    return stage() if callable(stage) else None


def _engine_accumulation(model) -> int | None:
    steps = getattr(model, "gradient_accumulation_steps", None)
    return steps() if callable(steps) else None


if __name__ == "__main__":
    main(Path(sys.argv[1]))
