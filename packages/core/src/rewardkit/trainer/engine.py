"""The engine: what runs the optimisation on one process, CPU or GPU, alone, under DDP or
DeepSpeed ZeRO (accelerate), apart from the algorithm (GRPOTrainer.train_step).

It owns the accelerator, the prepared model, the optimizer and the LR scheduler, and
offers what a step needs: the micro-batches to run (padded with empty ones so that every
process makes as many backward calls as the busiest, as DDP requires), a backward that
syncs gradients only at the last micro-batch, and one optimizer step (clip, update, zero,
schedule) that returns the gradient norm.

Rank and world size come from torch.distributed (`distributed.py`): under DeepSpeed on a
CPU, accelerate's own state reports one process while DeepSpeed runs several.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin

from rewardkit.trainer import distributed as dist


class Engine:
    def __init__(self, config: Any, output_dir: Path, log_with: list[Any] | None):
        self.config = config
        self.accelerator = Accelerator(
            log_with=log_with,
            project_dir=str(output_dir),
            mixed_precision="no",
            # the trainer accumulates over its own micro-batches and steps once per
            # iteration: a launcher's gradient accumulation
            # (ACCELERATE_GRADIENT_ACCUMULATION_STEPS) must not divide the loss, nor the
            # scheduler step once per process (its default, meant for data loaders whose
            # batch grows with the process count)
            gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1),
            step_scheduler_with_optimizer=False,
        )
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.deepspeed: Any = None  # the DeepSpeedEngine, under DeepSpeed
        self._policy: Any = None

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def prepare(self, model: torch.nn.Module) -> None:
        """AdamW on the trainable parameters, the LR schedule (one scheduler step per
        optimizer step: num_iterations of them per training step), then accelerate."""
        c = self.config
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=c.learning_rate,
            betas=tuple(c.adam_betas),
            weight_decay=c.weight_decay,
        )
        from transformers import get_scheduler

        total = max(c.max_steps * c.num_iterations, 1)
        scheduler = get_scheduler(
            c.lr_scheduler, optimizer, c.warmup_steps * c.num_iterations, total
        )
        # DeepSpeed: the trainer cuts its own micro-batches and calls engine.step() once per
        # iteration, so DeepSpeed's batch bookkeeping is pinned to 1 micro-batch of 1 per
        # step (its checks need micro x accumulation x world = train_batch_size) and its
        # gradient clipping follows max_grad_norm.
        plugin = self.accelerator.state.deepspeed_plugin
        if plugin is not None:
            plugin.deepspeed_config.update(
                train_micro_batch_size_per_gpu=1,
                gradient_accumulation_steps=1,
                train_batch_size=dist.world(),
                gradient_clipping=c.max_grad_norm,
            )
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(
            model, optimizer, scheduler
        )
        self.deepspeed = self.model if plugin is not None else None
        # unwrapping walks the module tree (milliseconds): once, the wrapper is fixed now
        self._policy = self.accelerator.unwrap_model(self.model)

    @property
    def policy(self) -> torch.nn.Module:
        """The model without its DDP / DeepSpeed wrapper (no-grad passes, generation, saving)."""
        return self._policy

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    # -- one optimizer step's micro-batches ----------------------------------------------
    def micro_batches(self, mbs: list[Any]) -> Iterator[tuple[Any, float, bool]]:
        """(micro-batch, scale, last) for as many micro-batches as the busiest process has;
        past its own, a process repeats its last one with scale 0 (it adds nothing)."""
        n = dist.max_over_processes(len(mbs))
        for j in range(n):
            yield mbs[min(j, len(mbs) - 1)], (1.0 if j < len(mbs) else 0.0), j == n - 1

    @contextlib.contextmanager
    def accumulate(self, last: bool):
        """Gradients are reduced across processes at the last micro-batch only."""
        if self.deepspeed is not None:  # DeepSpeed: its boundary flag
            self.deepspeed.set_gradient_accumulation_boundary(last)
            yield
        elif last:
            yield
        else:
            with self.accelerator.no_sync(self.model):
                yield

    def backward(self, loss: torch.Tensor) -> None:
        if self.deepspeed is not None:  # no 1/gradient_accumulation_steps rescale: the
            self.deepspeed.backward(loss, scale_wrt_gas=False)  # loss weights normalise
        else:
            self.accelerator.backward(loss)

    def step(self) -> float:
        """Clip, update, zero the gradients, step the LR schedule; the gradient norm."""
        grad_norm = 0.0
        if self.deepspeed is not None:  # one real step: clip, update, zero grads
            self.deepspeed.step()
            grad_norm = float(self.deepspeed.get_global_grad_norm() or 0.0)
        else:
            if self.config.max_grad_norm > 0:
                params = self.model.parameters()
                grad_norm = float(
                    self.accelerator.clip_grad_norm_(params, self.config.max_grad_norm)
                )
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()  # a torch scheduler: DeepSpeed leaves it to us
        return grad_norm
