"""GRPOTrainer: the GRPO loop on accelerate, readable top to bottom.

    policy = task.prepare_policy(policy)            # task hook; then reference copy, optimizer
    task.evaluate_policy(policy)                    # task hook, before the first step
    for each step:
        rows     = next prompts (each process its own share)
        samples  = rollout(policy, rows, num_generations)
        scores   = scorer(samples)                 # weighted rewards, concurrent
        (group filter, e.g. DAPO's dynamic sampling: drop groups, sample more)
        learning rewards learn from the batch     # e.g. PRIME's online PRM
        adv      = estimator(batch)                # (B, T), from the registry
        old/ref log-probs when num_iterations > 1 or beta > 0
        for each iteration: for each micro-batch: loss (registry), backward; optimizer step
        log, evaluate, checkpoint
    task.evaluate_policy(policy)                    # and after the last

Variation lives in the registered estimators, rewards, losses, group filters and
collators; the engine (engine.py) runs backward and optimizer steps on one process, DDP or
DeepSpeed. Neither is here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from rewardkit.data import TrainSequence, completion_logprobs, make_micro_batches
from rewardkit.filters import build_group_filter, fill_batch, zero_variance_fraction
from rewardkit.models import save_plain
from rewardkit.registry import LOSSES
from rewardkit.rewards.lifecycle import (
    RewardContext,
    learners,
    load_reward_states,
    reward_states,
)
from rewardkit.rewards.scoring import Scorer, ScoreResult
from rewardkit.trainer import distributed as dist
from rewardkit.trainer.components import estimator_requires, load_policy, resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit.trainer.engine import Engine
from rewardkit.trainer.logging import (
    LossTotals,
    advantage_metrics,
    drop_rows_after,
    flatten,
    plot_history,
    set_aside_previous_logs,
    trackers,
    write_completions,
)
from rewardkit.trainer.prompts import PromptStream
from rewardkit.trainer.rollout import (
    encode_prompts,
    make_backend,
    multi_turn_rollout,
    single_turn_rollout,
)
from rewardkit.types import RolloutBatch, Sample

TIMERS = ("generate", "score", "learn", "forward_backward", "optimizer")


class GRPOTrainer:
    def __init__(self, config: GRPOConfig, model=None, tokenizer=None, components=None):
        self.config = c = config
        self.parts = components or resolve(c)  # names fail here, before any model loads
        self.task, self.estimator = self.parts.task, self.parts.estimator
        self.loss = self.parts.loss or LOSSES.get(c.loss_type)()
        self.group_filter = self.parts.group_filter or build_group_filter(
            c.group_filter, c.group_filter_options
        )
        self.output_dir = Path(c.output_dir)
        self.engine = Engine(
            c, self.output_dir, trackers(c.report_to, self.output_dir) if dist.is_main() else None
        )
        set_seed(c.seed + dist.rank())
        if model is None:
            model, tokenizer = load_policy(c)
        # the task's hook (new tokens, a supervised stage, ...): before the reference copy
        # and the optimizer, so both see the policy GRPO starts from
        model, self.tokenizer = self.task.prepare_policy(model, tokenizer, c)
        self.ref_model = None  # beta > 0 without LoRA; with LoRA: the adapter-free base
        if c.beta > 0 and c.lora_r == 0:
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        self.engine.prepare(model)
        if self.ref_model is not None:
            self.ref_model.to(self.engine.device)
        self.scorer = Scorer(self.parts.rewards, c.reward_timeout, c.on_reward_error)
        self.reward_objects = {r.name: r.reward for r in self.parts.rewards}
        attention = getattr(getattr(model, "config", None), "_attn_implementation", "") or ""
        self.packing = c.packing if c.packing is not None else "flash" in attention
        self.backend = make_backend(
            c,
            self.tokenizer,
            lambda: self.engine.policy,
            self.task.generation_constraint(self.tokenizer),
        )
        self.train_rows = self.task.rows("train")
        self.stream = PromptStream(len(self.train_rows), c.seed, dist.rank(), dist.world())
        self.prompts_truncated = 0  # prompts cut to max_prompt_length (kept: their end)
        self.step = 0
        self.timers: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        if dist.is_main():
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.engine.accelerator.init_trackers("rewardkit", config=flatten(c.to_dict()))
        if c.resume_from:
            self.load_checkpoint(c.resume_from)

    # the engine's parts, by their usual names
    accelerator = property(lambda self: self.engine.accelerator)
    model = property(lambda self: self.engine.model)
    optimizer = property(lambda self: self.engine.optimizer)
    scheduler = property(lambda self: self.engine.scheduler)

    @contextlib.contextmanager
    def timed(self, name: str):
        """Add the wall time of the block to this step's `time/<name>`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timers[name] = self.timers.get(name, 0.0) + time.perf_counter() - start

    # -- rollouts ------------------------------------------------------------------------
    def rollout(self, rows, group_offset: int = 0, greedy: bool = False, generations=None):
        c = self.config
        prompts = [self.task.prompt(r) for r in rows]
        ids, cut = encode_prompts(self.tokenizer, prompts, c.max_prompt_length, c.task)
        self.prompts_truncated += cut
        g = generations or c.num_generations
        if self.task.multi_turn:
            return multi_turn_rollout(
                self.backend,
                self.tokenizer,
                self.task.make_environment,
                rows,
                ids,
                prompts,
                g,
                c.max_completion_length,
                self.task.max_turns,
                self.task.max_episode_tokens,
                group_offset,
                seed=c.seed + 7919 * self.step + 104729 * dist.rank(),
                greedy=greedy,
            )
        return single_turn_rollout(
            self.backend,
            self.tokenizer,
            rows,
            ids,
            prompts,
            g,
            c.max_completion_length,
            group_offset,
            greedy,
        )

    def sample_and_score(self) -> tuple[list[Sample], ScoreResult, dict[str, float]]:
        """One step's samples and scores; with a group filter (`group_filter`, e.g. DAPO's
        zero_variance) only the groups it keeps, sampling more prompts until the batch is
        full (`filters.fill_batch`)."""
        c = self.config
        stats: dict[str, float] = {}

        def draw(group_offset: int) -> tuple[list[Sample], ScoreResult]:
            rows = [self.train_rows[i] for i in self.stream.take(c.prompts_per_step)]
            with self.timed("generate"):
                samples = self.rollout(rows, group_offset=group_offset)
            with self.timed("score"):
                scored = self.scorer(samples, RewardContext(self.step, "train"))
            # measured on the step's first draw, before any filter
            stats.setdefault(
                "frac_zero_variance_groups", zero_variance_fraction(samples, scored.total)
            )
            return samples, scored

        if self.group_filter is None:
            samples, result = draw(0)
            return samples, result, stats
        samples, result, filtered = fill_batch(
            draw, self.group_filter, c.prompts_per_step, c.max_resample_rounds
        )
        return samples, result, {**stats, **filtered}

    def learn_rewards(self, samples: list[Sample], scored: ScoreResult) -> ScoreResult:
        """The learned-reward hook: every reward that learns (`learn`, e.g. PRIME's online
        PRM) learns once from the step's scored, filtered train batch; those that ask for it
        (`scores_after_learning`) then score the batch again. Evaluation never calls this.
        What they learned is logged through their `stats()`."""
        context = RewardContext(self.step, "train")
        again: set[str] = set()
        for name, _, reward in learners(self.reward_objects):
            reward.learn(samples, scored, context)
            if getattr(reward, "scores_after_learning", False):
                again.add(name)
        if again:
            scored = self.scorer.rescore(samples, scored, again, context)
        return scored

    # -- one training step ---------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """Sample and score (filtered), let learning rewards learn, estimate advantages, get
        old / reference log-probs, then num_iterations optimizer steps over micro-batches."""
        c, engine = self.config, self.engine
        t0 = time.perf_counter()
        self.timers = dict.fromkeys(TIMERS, 0.0)
        samples, scored, stats = self.sample_and_score()
        with self.timed("learn"):
            scored = self.learn_rewards(samples, scored)
        seqs = [TrainSequence(s.prompt_ids, s.completion_ids, i) for i, s in enumerate(samples)]
        layout = "shared_prompt" if c.share_prompts else "packed" if self.packing else "padded"
        mbs = make_micro_batches(
            seqs, c.micro_batch_tokens, layout, self.tokenizer.pad_token_id, engine.device
        )
        with self.timed("forward_backward"):
            old_logp, ref_logp, entropies = self.logprob_pass(samples, mbs)
        batch = RolloutBatch.from_samples(
            samples, scored.outputs, scored.total, c.max_completion_length, entropies
        )
        adv = self.estimator(batch).to(engine.device)
        loss_mask = self.loss_mask(batch, samples)
        weights = self.loss.weights(
            loss_mask,
            c.max_completion_length,
            global_tokens=dist.sum_over_processes(loss_mask.sum().item()),
            num_processes=dist.world(),
        )
        totals, grad_norm = LossTotals(engine.device), 0.0
        for _ in range(c.num_iterations):
            for mb, scale, last in engine.micro_batches(mbs):
                with self.timed("forward_backward"), engine.accumulate(last):
                    logp, entropy = completion_logprobs(
                        engine.model, mb, c.temperature, with_entropy=True
                    )
                    r, t = mb.rows.to(engine.device), mb.cols.to(engine.device)
                    tl = self.loss.token_loss(
                        logp,
                        None if old_logp is None else old_logp[r, t],
                        adv[r, t],
                        loss_mask[r, t],
                        r,
                        c.epsilon_low,
                        c.epsilon_upper,
                        c.beta,
                        None if ref_logp is None else ref_logp[r, t],
                    )
                    loss = (weights[r, t] * scale * tl.loss).sum()
                    engine.backward(loss)
                totals.add(loss, tl, entropy, loss_mask[r, t] * scale)
            with self.timed("optimizer"):
                grad_norm = engine.step()
        self.backend.sync_weights(engine.policy)
        self.step += 1
        metrics = {
            **scored.metrics(),
            **self.scorer.reward_stats(),
            **stats,
            **totals.metrics(c.num_iterations),
            **advantage_metrics(adv, loss_mask),
            **self.batch_metrics(samples, batch),
            "grad_norm": grad_norm,
            "lr": engine.lr,
            "micro_batches": float(len(mbs)),
            **{f"time/{name}": seconds for name, seconds in self.timers.items()},
        }
        metrics = dist.mean_over_processes(metrics)
        metrics["time/step"] = time.perf_counter() - t0
        self.log_completions(samples, scored, adv, loss_mask)
        return metrics

    def loss_mask(self, batch: RolloutBatch, samples: list[Sample]) -> torch.Tensor:
        """The policy tokens that train: completion_mask, less truncated completions when
        mask_truncated_completions."""
        mask = batch.completion_mask.to(self.engine.device)
        if self.config.mask_truncated_completions:
            truncated = torch.tensor([s.truncated for s in samples], device=mask.device)
            mask = mask * (~truncated).float().unsqueeze(1)
        return mask

    def batch_metrics(self, samples: list[Sample], batch: RolloutBatch) -> dict[str, float]:
        metrics = {
            "completion_length": batch.completion_mask.sum(1).float().mean().item(),
            "truncated_fraction": sum(s.truncated for s in samples) / len(samples),
            "prompts_truncated": float(self.prompts_truncated),
        }
        if self.config.lora_r > 0 and hasattr(self.backend, "lora_merged"):
            metrics["lora_merged_generation"] = float(self.backend.lora_merged)  # 0: fallback
        return metrics

    def log_completions(self, samples, scored: ScoreResult, adv, loss_mask) -> None:
        every = self.config.log_completions_every
        if every and self.step % every == 0 and dist.is_main():
            first_adv = [adv[i][loss_mask[i] > 0][:1].sum().item() for i in range(len(samples))]
            write_completions(
                self.output_dir / "completions.jsonl", self.step, samples, scored.raw, first_adv
            )

    @torch.no_grad()
    def logprob_pass(self, samples, mbs):
        """Old-policy (num_iterations > 1) and reference (beta > 0) log-probs, and each
        sample's mean token entropy (an estimator that requires "entropy"), as needed."""
        c = self.config
        need_old = c.num_iterations > 1
        need_entropy = "entropy" in estimator_requires(self.estimator)
        if not (need_old or need_entropy or c.beta > 0):
            return None, None, None
        B = len(samples)
        T = max(len(s.completion_ids) for s in samples)
        dev = self.engine.device
        old = torch.zeros(B, T, device=dev) if need_old or need_entropy else None
        ent = torch.zeros(B, T, device=dev) if need_entropy else None
        ref = torch.zeros(B, T, device=dev) if c.beta > 0 else None
        for mb in mbs:
            r, t = mb.rows.to(dev), mb.cols.to(dev)
            if old is not None:  # the unwrapped policy: no DDP hooks in a no-grad pass
                logp, e = completion_logprobs(
                    self.engine.policy, mb, c.temperature, with_entropy=need_entropy
                )
                old[r, t] = logp
                if ent is not None:
                    ent[r, t] = e
            if ref is not None:
                ref[r, t] = completion_logprobs(self._reference(), mb, c.temperature)[0]
        entropies = None
        if ent is not None:
            mask = torch.zeros(B, T, device=dev)
            for i, s in enumerate(samples):
                mask[i, : len(s.completion_mask)] = torch.tensor(
                    s.completion_mask, device=dev, dtype=torch.float
                )
            entropies = ((ent * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu()
        return (old if need_old else None), ref, entropies

    def _reference(self):
        if self.ref_model is not None:
            return self.ref_model
        return _AdaptersDisabled(self.engine.policy)

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
            scored = self.scorer(samples, RewardContext(self.step, "eval"))
            scores = scored.raw[self.parts.accuracy_reward]
            correct = float(sum(s >= self.config.eval_correct_threshold for s in scores))
        return dist.sum_over_processes(correct) / max(len(rows), 1)

    def held_out(self) -> dict[str, float]:
        """{"eval/accuracy": ...}, or nothing when eval_size is 0 (no held-out evaluation)."""
        return {"eval/accuracy": self.evaluate()} if self.config.eval_size else {}

    @torch.no_grad()
    def evaluate_task(self, stage: str) -> dict[str, float]:
        """The task's own metrics (`Task.evaluate_policy`), main process only, as `task/<name>`;
        also written to <output_dir>/task_eval.json under `stage` ("before" or "after")."""
        if not dist.is_main():
            return {}
        policy = self.engine.policy
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

        with self.scorer:  # its reward threads end with the run, also on an error
            c = self.config
            if self.step == 0:  # a fresh run: its logs hold only its own rows
                if dist.is_main():
                    set_aside_previous_logs(self.output_dir)
                self._log({**self.held_out(), **self.evaluate_task("before")})
            columns = [
                TextColumn("GRPO"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
            ]
            show = c.progress and dist.is_main()
            with Progress(*columns, disable=not show) as bar:
                job = bar.add_task("train", total=c.max_steps, completed=self.step, info="")
                while self.step < c.max_steps:
                    metrics = self.train_step()
                    if c.eval_every and self.step % c.eval_every == 0 and self.step < c.max_steps:
                        metrics.update(self.held_out())
                    self._log(metrics)
                    info = f"reward {metrics['reward/total/mean']:.3f}"
                    if "eval/accuracy" in metrics:
                        info += f"  acc {metrics['eval/accuracy']:.3f}"
                    bar.update(job, completed=self.step, info=info)
                    if c.save_every and self.step % c.save_every == 0:
                        self.save_checkpoint()
            self._log({**self.held_out(), **self.evaluate_task("after")})
            self.save_checkpoint(final=True)
            if dist.is_main():
                plot_history(
                    self.history,
                    self.output_dir / "training.png",
                    f"{c.task} — {c.advantage}",
                    self.parts.accuracy_reward,
                )
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
    def save_checkpoint(self, final: bool = False) -> Path:
        """checkpoint-<step>/ (resumable state); with `final`, also the trained model and
        tokenizer in <output_dir>/final (only at the end of training, so a periodic save
        never replaces the model of a finished run)."""
        path = self.output_dir / f"checkpoint-{self.step}"
        self.accelerator.save_state(str(path))
        states = reward_states(self.reward_objects)
        if states:  # each process scores its own share: its rewards' state is its own
            path.mkdir(parents=True, exist_ok=True)
            torch.save(states, path / f"reward_state_rank{dist.rank()}.pt")
        if dist.is_main():
            state = {"step": self.step, "stream": self.stream.state_dict(), "history": self.history}
            (path / "trainer_state.json").write_text(json.dumps(state, default=float))
            if final:  # a LoRA policy is saved merged: final/ loads on its own
                save_plain(self.engine.policy, self.tokenizer, self.output_dir / "final")
        dist.barrier()
        return path

    def load_checkpoint(self, path: str) -> None:
        if path == "latest":
            found = sorted(
                self.output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
            )
            if not found:
                raise FileNotFoundError(f"resume_from=latest: no checkpoint in {self.output_dir}")
            path = str(found[-1])
        if not (Path(path) / "trainer_state.json").exists():
            raise FileNotFoundError(f"{path} is not a rewardkit checkpoint (no trainer_state.json)")
        self.accelerator.load_state(path)
        saved = Path(path) / f"reward_state_rank{dist.rank()}.pt"
        states = torch.load(saved, weights_only=False) if saved.exists() else {}
        load_reward_states(self.reward_objects, states)
        state = json.loads((Path(path) / "trainer_state.json").read_text())
        self.step = state["step"]
        self.stream.load_state_dict(state["stream"])
        self.history = state["history"]
        if dist.is_main():
            drop_rows_after(self.output_dir, self.step)


class _AdaptersDisabled(torch.nn.Module):
    """The PEFT base model with adapters switched off: the reference policy under LoRA."""

    def __init__(self, peft_model):
        super().__init__()
        self.peft_model = peft_model

    def forward(self, **kwargs):
        with self.peft_model.disable_adapter():
            return self.peft_model(**kwargs)
