"""GRPOTrainer: the GRPO loop on accelerate, readable top to bottom.

    policy = task.prepare_policy(policy)            # task hook; then reference copy, optimizer
    task.evaluate_policy(policy)                    # task hook, before the first step
    for each step:
        rows     = next prompts (each process its own share)
        samples  = rollout(policy, rows, num_generations)
        scores   = scorer(samples)                 # weighted rewards, concurrent
        (dynamic sampling: drop zero-variance groups, sample more)
        adv      = estimator(batch)                # (B, T), from the registry
        old/ref log-probs when num_iterations > 1 or beta > 0
        for each iteration: for each micro-batch: clipped loss, backward; optimizer step
        log, evaluate, checkpoint
    task.evaluate_policy(policy)                    # and after the last

Variation lives in the registered estimators, rewards and collators, not here.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin, set_seed

from rewardkit.chat import prompt_ids
from rewardkit.data import TrainSequence, completion_logprobs, make_micro_batches
from rewardkit.models import save_plain
from rewardkit.rewards.scoring import Scorer, ScoreResult
from rewardkit.trainer import distributed as dist
from rewardkit.trainer.components import estimator_requires, load_policy, resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.logging import flatten, plot_history, trackers, write_completions
from rewardkit.trainer.loss import per_token_loss, token_weights
from rewardkit.trainer.prompts import PromptStream
from rewardkit.trainer.rollout import (
    HFGenerate,
    VLLMGenerate,
    multi_turn_rollout,
    single_turn_rollout,
)
from rewardkit.types import RolloutBatch, Sample

ZERO_STD = 1e-6  # a group's rewards "do not vary" below this std (float32 rounding)


class GRPOTrainer:
    def __init__(self, config: GRPOConfig, model=None, tokenizer=None, components=None):
        self.config = c = config
        self.parts = components or resolve(c)  # names fail here, before any model loads
        self.task = self.parts.task
        self.estimator = self.parts.estimator
        self.output_dir = Path(c.output_dir)
        self.accelerator = Accelerator(
            log_with=trackers(c.report_to, self.output_dir) if dist.is_main() else None,
            project_dir=str(self.output_dir),
            mixed_precision="no",
            # train_step accumulates over its own micro-batches and steps once per iteration:
            # a launcher's gradient accumulation (ACCELERATE_GRADIENT_ACCUMULATION_STEPS)
            # must not divide the loss, nor the scheduler step once per process (its
            # default, meant for data loaders whose batch grows with the process count)
            gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1),
            step_scheduler_with_optimizer=False,
        )
        set_seed(c.seed + dist.rank())
        if model is None:
            model, tokenizer = load_policy(c)
        # the task's hook (new tokens, a supervised stage, ...): before the reference copy
        # and the optimizer, so both see the policy GRPO starts from
        model, tokenizer = self.task.prepare_policy(model, tokenizer, c)
        self.tokenizer = tokenizer
        self.ref_model = None
        if c.beta > 0 and c.lora_r == 0:  # with LoRA the reference is the adapter-free base
            import copy

            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=c.learning_rate,
            betas=tuple(c.adam_betas),
            weight_decay=c.weight_decay,
        )
        from transformers import get_scheduler

        # one scheduler step per optimizer step: num_iterations of them per training step
        total = max(c.max_steps * c.num_iterations, 1)
        scheduler = get_scheduler(c.lr_scheduler, optimizer, c.warmup_steps * c.num_iterations, total)
        # DeepSpeed: train_step cuts its own micro-batches and calls engine.step() once per
        # iteration, so DeepSpeed's batch bookkeeping is pinned to 1 micro-batch of 1 per
        # step (its checks need micro x accumulation x world = train_batch_size) and its
        # gradient clipping follows max_grad_norm. World from torch.distributed (spec §6).
        ds_plugin = self.accelerator.state.deepspeed_plugin
        if ds_plugin is not None:
            ds_plugin.deepspeed_config.update(
                train_micro_batch_size_per_gpu=1,
                gradient_accumulation_steps=1,
                train_batch_size=dist.world(),
                gradient_clipping=c.max_grad_norm,
            )
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(
            model, optimizer, scheduler
        )
        self.ds_engine = self.model if ds_plugin is not None else None  # a DeepSpeedEngine
        if self.ref_model is not None:
            self.ref_model.to(self.accelerator.device)
        self.scorer = Scorer(self.parts.rewards, c.reward_timeout, c.on_reward_error)
        self.pad_id = tokenizer.pad_token_id
        attention = getattr(getattr(model, "config", None), "_attn_implementation", "") or ""
        self.packing = c.packing if c.packing is not None else "flash" in attention
        if c.backend == "vllm":
            self.backend = VLLMGenerate(c.model, tokenizer, temperature=c.temperature,
                                        top_p=c.top_p, top_k=c.top_k, stop_strings=c.stop_strings)
        else:
            self.backend = HFGenerate(
                lambda: self.accelerator.unwrap_model(self.model), tokenizer,
                c.temperature, c.top_p, c.top_k, c.stop_strings,
            )
        self.train_rows = self.task.rows("train")
        self.stream = PromptStream(len(self.train_rows), c.seed, dist.rank(), dist.world())
        self.prompts_truncated = 0  # prompts cut to max_prompt_length (kept: their end)
        self.step = 0
        self.timers: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        if dist.is_main():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.accelerator.init_trackers("rewardkit", config=flatten(c.to_dict()))
        if c.resume_from:
            self.load_checkpoint(c.resume_from)

    @contextlib.contextmanager
    def timed(self, name: str):
        """Add the wall time of the block to this step's `time/<name>`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timers[name] = self.timers.get(name, 0.0) + time.perf_counter() - start

    # -- rollouts ------------------------------------------------------------------------
    def encode_prompts(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[int]]]:
        prompts = [self.task.prompt(r) for r in rows]
        ids = []
        for p in prompts:
            tokens = prompt_ids(self.tokenizer, p, self.config.task)  # chat: its template
            if len(tokens) > self.config.max_prompt_length:
                self.prompts_truncated += 1
            ids.append(tokens[-self.config.max_prompt_length :])
        return prompts, ids

    def rollout(self, rows, group_offset: int = 0, greedy: bool = False, generations=None):
        c = self.config
        prompts, ids = self.encode_prompts(rows)
        g = generations or c.num_generations
        make_env = getattr(self.task, "make_environment", None)
        if make_env is not None:
            return multi_turn_rollout(
                self.backend, self.tokenizer, make_env, rows, ids, prompts, g,
                c.max_completion_length, c.max_turns, c.max_episode_tokens, group_offset,
                seed=c.seed + 7919 * self.step + 104729 * dist.rank(), greedy=greedy,
            )
        return single_turn_rollout(
            self.backend, self.tokenizer, rows, ids, prompts, g, c.max_completion_length,
            group_offset, greedy,
        )

    def sample_and_score(self) -> tuple[list[Sample], ScoreResult, dict[str, float]]:
        """One step's samples and scores; with dynamic sampling (DAPO) only groups whose
        rewards vary are kept, sampling more prompts until the batch is full."""
        c = self.config
        rows = [self.train_rows[i] for i in self.stream.take(c.prompts_per_step)]
        with self.timed("generate"):
            samples = self.rollout(rows)
        with self.timed("score"):
            result = self.scorer(samples)
        stats = {"frac_zero_variance_groups": _zero_variance_fraction(samples, result.total)}
        if not c.dynamic_sampling:
            return samples, result, stats
        kept_samples: list[Sample] = []
        kept: list[ScoreResult] = []
        rounds = 0
        while True:
            for g in sorted({s.group for s in samples}):
                idx = [i for i, s in enumerate(samples) if s.group == g]
                full = len(kept_samples) >= c.prompts_per_step * c.num_generations
                if not full and result.total[idx].std() >= ZERO_STD:
                    kept_samples += [samples[i] for i in idx]
                    kept.append(result.select(idx))
            full = len(kept_samples) >= c.prompts_per_step * c.num_generations
            if full or rounds >= c.max_resample_rounds:
                break
            rounds += 1
            offset = max(s.group for s in samples) + 1
            rows = [self.train_rows[i] for i in self.stream.take(c.prompts_per_step)]
            with self.timed("generate"):
                samples = self.rollout(rows, group_offset=offset)
            with self.timed("score"):
                result = self.scorer(samples)
        stats["dynamic_sampling/rounds"] = float(rounds)
        stats["dynamic_sampling/groups_kept"] = len(kept_samples) / c.num_generations
        if not kept:  # nothing varied: train on the last batch (its advantages are zero)
            return samples, result, stats
        return kept_samples, ScoreResult.concat(kept), stats

    # -- one training step ---------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        c, acc = self.config, self.accelerator
        t0 = time.perf_counter()
        self.timers = {"generate": 0.0, "score": 0.0, "forward_backward": 0.0, "optimizer": 0.0}
        samples, scored, stats = self.sample_and_score()
        seqs = [TrainSequence(s.prompt_ids, s.completion_ids, i) for i, s in enumerate(samples)]
        layout = "shared_prompt" if c.share_prompts else "packed" if self.packing else "padded"
        mbs = make_micro_batches(seqs, c.micro_batch_tokens, layout, self.pad_id, acc.device)
        n_mbs = dist.max_over_processes(len(mbs))  # DDP needs the same number of backwards
        requires = estimator_requires(self.estimator)
        need_old = c.num_iterations > 1
        with self.timed("forward_backward"):
            old_logp, ref_logp, entropies = self._pre_pass(
                samples, mbs, need_old, "entropy" in requires
            )
        batch = RolloutBatch.from_samples(
            samples, scored.outputs, scored.total, c.max_completion_length, entropies
        )
        adv = self.estimator(batch).to(acc.device)
        loss_mask = batch.completion_mask.to(acc.device)
        if c.mask_truncated_completions:
            truncated = torch.tensor([s.truncated for s in samples], device=acc.device)
            loss_mask = loss_mask * (~truncated).float().unsqueeze(1)
        weights = token_weights(
            loss_mask, c.loss_type, c.max_completion_length,
            global_tokens=dist.sum_over_processes(loss_mask.sum().item()),
            num_processes=dist.world(),
        )
        zero = torch.zeros((), device=acc.device)
        sums = {k: zero.clone() for k in ("loss", "clip", "kl", "entropy", "tokens")}
        grad_norm = 0.0
        for _ in range(c.num_iterations):
            for j in range(n_mbs):
                mb = mbs[min(j, len(mbs) - 1)]
                scale = 1.0 if j < len(mbs) else 0.0  # a padding micro-batch adds nothing
                last = j == n_mbs - 1
                no_sync = not last and self.ds_engine is None  # DeepSpeed: the boundary flag
                sync = acc.no_sync(self.model) if no_sync else contextlib.nullcontext()
                with self.timed("forward_backward"), sync:
                    logp, ent = completion_logprobs(self.model, mb, c.temperature, with_entropy=True)
                    r, t = mb.rows.to(acc.device), mb.cols.to(acc.device)
                    tl = per_token_loss(
                        logp, None if old_logp is None else old_logp[r, t], adv[r, t],
                        c.epsilon_low, c.epsilon_upper, c.beta,
                        None if ref_logp is None else ref_logp[r, t],
                    )
                    w = weights[r, t] * scale
                    loss = (w * tl.loss).sum()
                    if self.ds_engine is not None:  # DeepSpeed: reduce at the last micro-batch;
                        # no 1/gradient_accumulation_steps rescale: the weights normalise
                        self.ds_engine.set_gradient_accumulation_boundary(last)
                        self.ds_engine.backward(loss, scale_wrt_gas=False)
                    else:
                        acc.backward(loss)
                m = loss_mask[r, t] * scale  # metrics stay on the device: no sync per micro-batch
                sums["loss"] += loss.detach()
                sums["clip"] += (tl.clipped.float() * m).sum()
                sums["entropy"] += (ent.detach() * m).sum()
                sums["kl"] += zero if tl.kl is None else (tl.kl * m).sum()
                sums["tokens"] += m.sum()
            with self.timed("optimizer"):
                if self.ds_engine is not None:  # one real step: clip, update, zero grads
                    self.ds_engine.step()
                    grad_norm = float(self.ds_engine.get_global_grad_norm() or 0.0)
                else:
                    if c.max_grad_norm > 0:
                        params = self.model.parameters()
                        grad_norm = float(acc.clip_grad_norm_(params, c.max_grad_norm))
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()  # a torch scheduler: DeepSpeed leaves it to us
        if isinstance(self.backend, VLLMGenerate):  # generation runs on its own weights copy
            self.backend.load_weights(self.accelerator.unwrap_model(self.model))
        sums = {k: v.item() for k, v in sums.items()}
        self.step += 1
        n_tok = max(sums["tokens"], 1.0)
        adv_tokens = adv[loss_mask > 0]
        lengths = batch.completion_mask.sum(1)
        metrics = {
            **scored.metrics(),
            **self.scorer.reward_stats(),
            **stats,
            "loss": sums["loss"] / c.num_iterations,
            "clip_fraction": sums["clip"] / n_tok,
            "entropy": sums["entropy"] / n_tok,
            "kl": sums["kl"] / n_tok,
            "advantage/mean": adv_tokens.mean().item() if adv_tokens.numel() else 0.0,
            "advantage/std": adv_tokens.std().item() if adv_tokens.numel() > 1 else 0.0,
            "advantage/abs_max": adv_tokens.abs().max().item() if adv_tokens.numel() else 0.0,
            "completion_length": lengths.float().mean().item(),
            "truncated_fraction": sum(s.truncated for s in samples) / len(samples),
            "prompts_truncated": float(self.prompts_truncated),
            "grad_norm": grad_norm,
            "lr": self.scheduler.get_last_lr()[0],
            **{f"time/{name}": seconds for name, seconds in self.timers.items()},
            "micro_batches": float(len(mbs)),
        }
        metrics = dist.mean_over_processes(metrics)
        metrics["time/step"] = time.perf_counter() - t0
        if c.log_completions_every and self.step % c.log_completions_every == 0 and dist.is_main():
            first_adv = [adv[i][loss_mask[i] > 0][:1].sum().item() for i in range(len(samples))]
            write_completions(self.output_dir / "completions.jsonl", self.step, samples,
                              scored.raw, first_adv)
        return metrics

    @torch.no_grad()
    def _pre_pass(self, samples, mbs, need_old: bool, need_entropy: bool):
        """Old-policy and reference log-probs and per-sample mean entropies, as needed."""
        c = self.config
        if not (need_old or need_entropy or c.beta > 0):
            return None, None, None
        B = len(samples)
        T = max(len(s.completion_ids) for s in samples)
        dev = self.accelerator.device
        old = torch.zeros(B, T, device=dev) if need_old or need_entropy else None
        ent = torch.zeros(B, T, device=dev) if need_entropy else None
        ref = torch.zeros(B, T, device=dev) if c.beta > 0 else None
        for mb in mbs:
            r, t = mb.rows.to(dev), mb.cols.to(dev)
            if old is not None:
                policy = self.accelerator.unwrap_model(self.model)  # no DDP hooks: no-grad pass
                logp, e = completion_logprobs(policy, mb, c.temperature, with_entropy=need_entropy)
                old[r, t] = logp
                if ent is not None:
                    ent[r, t] = e
            if ref is not None:
                ref[r, t] = completion_logprobs(self._reference(), mb, c.temperature)[0]
        entropies = None
        if ent is not None:
            mask = torch.zeros(B, T, device=dev)
            for i, s in enumerate(samples):
                mask[i, : len(s.completion_mask)] = torch.tensor(s.completion_mask, device=dev, dtype=torch.float)
            entropies = ((ent * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu()
        return (old if need_old else None), ref, entropies

    def _reference(self):
        if self.ref_model is not None:
            return self.ref_model
        return _AdaptersDisabled(self.accelerator.unwrap_model(self.model))

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str = "test") -> float:
        """Greedy held-out accuracy: the share of rows whose accuracy reward reaches
        eval_correct_threshold. Each process scores its share; the result is global."""
        rows = self.task.rows(split)[: self.config.eval_size]
        mine = rows[dist.rank() :: dist.world()]
        correct = 0.0
        if mine:
            samples = self.rollout(mine, greedy=True, generations=1)
            scores = self.scorer(samples).raw[self.parts.accuracy_reward]
            correct = float(sum(s >= self.config.eval_correct_threshold for s in scores))
        return dist.sum_over_processes(correct) / max(len(rows), 1)

    @torch.no_grad()
    def evaluate_task(self, stage: str) -> dict[str, float]:
        """The task's own metrics (`Task.evaluate_policy`), main process only, as `task/<name>`;
        also written to <output_dir>/task_eval.json under `stage` ("before" or "after")."""
        if not dist.is_main():
            return {}
        policy = self.accelerator.unwrap_model(self.model)
        was_training = policy.training
        metrics = self.task.evaluate_policy(policy.eval(), self.tokenizer)
        policy.train(was_training)
        bad = {k: v for k, v in metrics.items() if not isinstance(v, int | float)}
        if bad:
            raise TypeError(f"{self.config.task}: evaluate_policy must return numbers, got {bad}")
        if metrics:
            path = self.output_dir / "task_eval.json"
            saved = json.loads(path.read_text()) if stage != "before" and path.exists() else {}
            path.write_text(json.dumps({**saved, stage: metrics}, indent=1, default=float))
        return {f"task/{name}": float(value) for name, value in metrics.items()}

    # -- the loop ------------------------------------------------------------------------
    def train(self) -> list[dict[str, float]]:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        c = self.config
        if self.step == 0:
            self._log({"eval/accuracy": self.evaluate(), **self.evaluate_task("before")})
        columns = [TextColumn("GRPO"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
        show = c.progress and dist.is_main()
        with Progress(*columns, disable=not show) as bar:
            job = bar.add_task("train", total=c.max_steps, completed=self.step, info="")
            while self.step < c.max_steps:
                metrics = self.train_step()
                if c.eval_every and self.step % c.eval_every == 0 and self.step < c.max_steps:
                    metrics["eval/accuracy"] = self.evaluate()
                self._log(metrics)
                info = f"reward {metrics['reward/total/mean']:.3f}"
                if "eval/accuracy" in metrics:
                    info += f"  acc {metrics['eval/accuracy']:.3f}"
                bar.update(job, completed=self.step, info=info)
                if c.save_every and self.step % c.save_every == 0:
                    self.save_checkpoint()
        self._log({"eval/accuracy": self.evaluate(), **self.evaluate_task("after")})
        self.save_checkpoint()
        if dist.is_main():
            plot_history(self.history, self.output_dir / "training.png",
                         f"{c.task} — {c.advantage}", self.parts.accuracy_reward)
        self.accelerator.end_training()
        return self.history

    def _log(self, metrics: dict[str, float]) -> None:
        row = {"step": self.step, **metrics}
        if self.history and self.history[-1]["step"] == self.step:
            self.history[-1].update(row)
        else:
            self.history.append(row)
        if dist.is_main():
            self.accelerator.log(metrics, step=self.step)

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        path = self.output_dir / f"checkpoint-{self.step}"
        self.accelerator.save_state(str(path))
        if dist.is_main():
            state = {"step": self.step, "stream": self.stream.state_dict(), "history": self.history}
            (path / "trainer_state.json").write_text(json.dumps(state, default=float))
            model = self.accelerator.unwrap_model(self.model)
            save_plain(model, self.tokenizer, self.output_dir / "final")  # LoRA: merged
        dist.barrier()
        return path

    def load_checkpoint(self, path: str) -> None:
        if path == "latest":
            found = sorted(self.output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
            if not found:
                raise FileNotFoundError(f"resume_from=latest: no checkpoint in {self.output_dir}")
            path = str(found[-1])
        if not (Path(path) / "trainer_state.json").exists():
            raise FileNotFoundError(f"{path} is not a rewardkit checkpoint (no trainer_state.json)")
        self.accelerator.load_state(path)
        state = json.loads((Path(path) / "trainer_state.json").read_text())
        self.step = state["step"]
        self.stream.load_state_dict(state["stream"])
        self.history = state["history"]


class _AdaptersDisabled(torch.nn.Module):
    """The PEFT base model with adapters switched off: the reference policy under LoRA."""

    def __init__(self, peft_model):
        super().__init__()
        self.peft_model = peft_model

    def forward(self, **kwargs):
        with self.peft_model.disable_adapter():
            return self.peft_model(**kwargs)


def _zero_variance_fraction(samples: list[Sample], scores: torch.Tensor) -> float:
    groups = sorted({s.group for s in samples})
    flat = 0
    for g in groups:
        idx = [i for i, s in enumerate(samples) if s.group == g]
        flat += int(len(idx) < 2 or float(scores[idx].std()) < ZERO_STD)
    return flat / max(len(groups), 1)
