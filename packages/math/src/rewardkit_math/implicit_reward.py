"""`math.implicit_prm`: token, step and outcome rewards from an implicit PRM, optionally
trained online (PRIME) inside the GRPO loop.

See `implicit_prm.py` for the formulas (arXiv 2412.01981). Each sample gets
`token_rewards` r_t, `step_rewards` r^(k) at the steps' end tokens (steps split on
`delimiter`), and a `score` chosen by `score`:

- "min" / "sum": the best-of-N ranking score, the smallest step reward or their sum
  (the sum is q at the end of the last step);
- "outcome": q_T, the sequence-level β·log-ratio;
- "zero": 0, when the token rewards are consumed by a process estimator (PRIME) and the
  outcome comes from the verifier, so that nothing is counted twice.

Online update (PRIME, arXiv 2502.01456, Algorithm 1 lines "update the PRM with the
outcome-verifier labels"): the trainer calls a reward once per step with all of that
step's rollouts, so the reward itself can train the PRM without touching the trainer.
With `online_update="before"` every call labels the samples with a verifiable outcome
reward (`label_reward`, `math.accuracy` by default; label = score > `label_threshold`),
takes one optimizer step of the CE loss (or DPO) on them and then scores them with the
updated PRM (PRIME's default); `"after"` scores first and updates afterwards; `"none"`
never updates. The loss goes to each sample's `info["prm_loss"]` and to `stats()`, which
the trainer logs as `reward/<name>/prm_loss`.

PRIME trains the PRM only on prompts whose accuracy is inside a band (0.2, 0.8):
`update_band=[low, high]` keeps, for the update, the samples of the groups whose mean
label lies strictly inside it (`prime.accuracy_filter`); None (default) keeps all.
A batch in which every prompt has fewer than `update_min_group_size` samples (2), or in
which the band keeps nothing, is scored without an update (counted in
`prm_skipped_updates`): the trainer's greedy evaluation rollouts (one per prompt) go
through the same reward, and the PRM must not learn from held-out prompts.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import torch

from rewardkit.types import RewardOutput, Sample
from rewardkit_math.implicit_prm import (
    DEFAULT_BETA,
    ImplicitPRM,
    best_of_n_score,
    q_values,
    step_rewards,
)
from rewardkit_math.prime import accuracy_filter
from rewardkit_math.steps import segment

ONLINE_MODES = ("none", "before", "after")


def _causal_lm(model: Any, tiny_model: dict[str, Any] | None) -> tuple[Any, Any]:
    """(model, tokenizer or None) from a model object, a local path or "tiny"."""
    if isinstance(model, str) and model == "tiny":
        from rewardkit.tiny import build_tiny_model

        return build_tiny_model(**(tiny_model or {}))
    if isinstance(model, str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), None
    return model, None


def _label_reward(label_reward: Any, options: dict[str, Any] | None) -> Any:
    if not isinstance(label_reward, str):
        if not callable(label_reward):
            raise ValueError(
                f"label_reward must be a reward name or a callable, got {label_reward!r}"
            )
        return label_reward
    from rewardkit.registry import REWARDS
    from rewardkit.rewards.base import build_reward

    return build_reward(REWARDS.get(label_reward), **(options or {}))


class ImplicitPRMReward:
    """Batch reward over an `ImplicitPRM` (given as `prm=`, or built from `model`,
    `ref_model` and `tokenizer`, each an object or a local path; `model="tiny"` builds
    `rewardkit.tiny`'s model with the `tiny_model` options, and the reference defaults to
    the same, so that πθ = π_ref at the start as in PRIME).

    Online options: `online_update` ("none" | "before" | "after"), `label_reward` (a
    REWARDS name or a batch reward, "math.accuracy"), `label_options`, `label_threshold`
    (0.5), `update_min_group_size` (2), `update_band` (None); `loss` ("ce" | "dpo") and `lr` (1e-6) of the PRM's
    optimizer when it is built here.
    """

    def __init__(
        self,
        model: Any = None,
        ref_model: Any = None,
        tokenizer: Any = None,
        beta: float = DEFAULT_BETA,
        delimiter: str = "\n\n",
        score: Literal["min", "sum", "outcome", "zero"] = "min",
        prm: ImplicitPRM | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        tiny_model: dict[str, Any] | None = None,
        online_update: Literal["none", "before", "after"] = "none",
        label_reward: Any = "math.accuracy",
        label_options: dict[str, Any] | None = None,
        label_threshold: float = 0.5,
        update_min_group_size: int = 2,
        update_band: list[float] | tuple[float, float] | None = None,
        loss: Literal["ce", "dpo"] = "ce",
        lr: float = 1e-6,
    ):
        if score not in ("min", "sum", "outcome", "zero"):
            raise ValueError(f"score must be min, sum, outcome or zero, got {score!r}")
        if online_update not in ONLINE_MODES:
            raise ValueError(f"online_update must be one of {ONLINE_MODES}, got {online_update!r}")
        if update_min_group_size < 1:
            raise ValueError(f"update_min_group_size must be >= 1, got {update_min_group_size}")
        if update_band is not None:
            if len(update_band) != 2 or not 0.0 <= update_band[0] < update_band[1] <= 1.0:
                raise ValueError(
                    f"update_band must be [low, high] with 0 <= low < high <= 1, got {update_band}"
                )
            update_band = (float(update_band[0]), float(update_band[1]))
        if prm is None:
            if model == "tiny" and ref_model is None:
                ref_model = "tiny"
            if model is None or ref_model is None:
                raise ValueError("math.implicit_prm needs `model` and `ref_model` (or `prm`)")
            policy, tiny_tokenizer = _causal_lm(model, tiny_model)
            reference, _ = _causal_lm(ref_model, tiny_model)
            tokenizer = tokenizer or tiny_tokenizer
            if tokenizer is None:
                if not isinstance(model, str):
                    raise ValueError("pass the tokenizer with a model object")
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model)
            prm = ImplicitPRM(
                policy,
                reference,
                tokenizer,
                beta=beta,
                loss=loss,
                lr=lr,
                label_threshold=label_threshold,
                device=device,
                batch_size=batch_size,
            )
        self.prm = prm
        self.delimiter = delimiter
        self.score = score
        self.online_update = online_update
        self.label_threshold = label_threshold
        self.update_min_group_size = update_min_group_size
        self.update_band = update_band
        self.labeler = (
            _label_reward(label_reward, label_options) if online_update != "none" else None
        )
        self._lock = threading.Lock()  # one update at a time, also if called concurrently
        self._stats: dict[str, float] = {"prm_updates": 0.0, "prm_skipped_updates": 0.0}

    # -- scoring --------------------------------------------------------------------------
    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        with self._lock:
            update: dict[str, Any] | None = None
            if self.online_update == "before":
                update = self._update(samples)
            outputs = self._score(samples)
            if self.online_update == "after":
                update = self._update(samples)
        if update is not None:
            for o, label in zip(outputs, update["labels"], strict=True):
                o.info.update(prm_label=label)
                if update["loss"] is not None:
                    o.info.update(prm_loss=update["loss"])
        return outputs

    def _score(self, samples: list[Sample]) -> list[RewardOutput]:
        outputs = []
        for s, r in zip(samples, self.prm.token_rewards(samples), strict=True):
            q = q_values(torch.tensor(r, dtype=torch.float64))
            ids = s.completion_ids or None
            _, ends = segment(s.completion, self.prm.tokenizer, ids, self.delimiter)
            steps = step_rewards(q, ends) if ends else None
            outcome = float(q[-1]) if len(q) else 0.0
            if self.score in ("min", "sum"):
                score = best_of_n_score(steps or [], self.score)
            else:
                score = outcome if self.score == "outcome" else 0.0
            outputs.append(
                RewardOutput(
                    score,
                    token_rewards=r,
                    step_rewards=steps,
                    step_ends=ends if steps is not None else None,
                    info={"q_T": outcome, "num_steps": len(ends)},
                )
            )
        return outputs

    # -- the online update ----------------------------------------------------------------
    def labels(self, samples: list[Sample]) -> list[float]:
        """Outcome labels l_i = [label_reward(y_i) > label_threshold] (the verifier's)."""
        if self.labeler is None:
            raise ValueError("labels need a label_reward (online_update is 'none')")
        values = [RewardOutput.coerce(v).score for v in self.labeler(samples)]
        if len(values) != len(samples):
            raise ValueError(
                f"label_reward returned {len(values)} values for {len(samples)} samples"
            )
        return [float(v > self.label_threshold) for v in values]

    def _update(self, samples: list[Sample]) -> dict[str, Any]:
        """One PRM optimizer step on the samples with verifier labels (or a skip)."""
        labels = self.labels(samples)
        sizes: dict[int, int] = {}
        for s in samples:
            sizes[s.group] = sizes.get(s.group, 0) + 1
        keep = list(range(len(samples)))
        if self.update_band is not None and samples:
            inside = accuracy_filter(
                torch.tensor(labels), torch.tensor([s.group for s in samples]), *self.update_band
            )
            keep = inside.nonzero().flatten().tolist()
        if not keep or max(sizes.values()) < self.update_min_group_size:
            self._stats["prm_skipped_updates"] += 1
            return {"labels": labels, "loss": None}
        kept, kept_labels = [samples[i] for i in keep], [labels[i] for i in keep]
        loss = self.prm.train_step(kept, kept_labels, [s.group for s in kept])
        self._stats.update(
            prm_loss=loss,
            prm_label_mean=sum(kept_labels) / len(kept_labels),
            prm_update_samples=float(len(kept)),
            prm_updates=self._stats["prm_updates"] + 1,
        )
        return {"labels": labels, "loss": loss}

    def stats(self) -> dict[str, float]:
        """Logged by the trainer as reward/<name>/<key>: the last update's loss and label
        mean, and the numbers of updates done and skipped so far."""
        return dict(self._stats)
