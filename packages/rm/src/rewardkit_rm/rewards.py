"""`rm.score` and `rm.ensemble`: trained reward models as GRPO rewards.

`rm.score` loads a reward model saved by `rewardkit-rm train` (its final/ folder) once,
when the run builds its rewards, on the trainer's device (accelerate's device for this
process: the GPU of its rank, else the CPU), and scores each batch in length-sorted
sub-batches of `batch_size`. The completion is scored as the assistant's reply to the
sample's prompt, formatted as in training (chat template, or prompt + text);
`prompt_format: chat` wraps a plain-text prompt as one user message, for a task whose
prompts are text but whose RM was trained on chat pairs (as the verifier-built sources
are). Drop it into a GRPO config like any reward:

    rewards:
      - name: rm.score
        options: {path: runs/rm_smollm2_mix/final, prompt_format: chat, normalize: group}

`info`
keeps the raw score; `normalize` optionally standardises scores over the batch or over
each prompt's group (mean 0, std 1; a constant set scores 0).

A GPM model has no score of a response alone: each completion gets the mean of its GPM
preference score against the other completions of its prompt (0 for a lone one).

`rm.ensemble` is the existing `ensemble` transform (rewardkit.rewards.transforms) over
one `rm.score` per path: mean, min, median or mean − λ·std of the members' scores.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import torch

from rewardkit.rewards.transforms import Ensemble
from rewardkit.types import RewardOutput, Sample

NORMALIZE = ("none", "batch", "group")
PROMPT_FORMATS = ("as_is", "chat")


def trainer_device() -> torch.device:
    """The device of this process as accelerate (and so the trainer) sees it."""
    from accelerate import PartialState

    return PartialState().device


def standardize(values: torch.Tensor) -> torch.Tensor:
    if len(values) < 2:
        return torch.zeros_like(values)
    std = values.std(unbiased=False)
    return (values - values.mean()) / std if std > 0 else torch.zeros_like(values)


class RMScore:
    """Batch reward: a trained reward model's score of each completion."""

    def __init__(
        self,
        path: str,
        device: str = "auto",
        batch_size: int = 16,
        normalize: Literal["none", "batch", "group"] = "none",
        max_length: int | None = None,
        prompt_format: Literal["as_is", "chat"] = "as_is",
    ):
        from rewardkit_rm.model import load_reward_model

        if normalize not in NORMALIZE:
            raise ValueError(f"rm.score: normalize must be one of {NORMALIZE}, got {normalize!r}")
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(
                f"rm.score: prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}"
            )
        self.prompt_format = prompt_format
        if batch_size < 1:
            raise ValueError(f"rm.score: batch_size must be >= 1, got {batch_size}")
        self.path = str(path)
        self.device = trainer_device() if device == "auto" else torch.device(device)
        self.model, self.tokenizer, self.loss = load_reward_model(path, self.device)
        self.model.requires_grad_(False)
        self.batch_size = batch_size
        self.normalize = normalize
        self.max_length = max_length or self.model.spec.max_length
        self.name = f"rm.score({self.path})"
        self._lock = threading.Lock()  # one forward at a time on this model
        self._counts = {"batches": 0, "samples": 0, "truncated": 0}

    def prompt_of(self, sample: Sample):
        if self.prompt_format == "chat" and isinstance(sample.prompt, str):
            return [{"role": "user", "content": sample.prompt}]
        return sample.prompt

    def raw_scores(self, samples: list[Sample]) -> tuple[torch.Tensor, int]:
        from rewardkit_rm.scoring import head_outputs

        with self._lock:
            out, gates, truncated = head_outputs(
                self.model,
                self.tokenizer,
                [self.prompt_of(s) for s in samples],
                [s.completion for s in samples],
                self.max_length,
                self.batch_size,
            )
        if self.model.spec.loss != "gpm":
            return self.loss.reward(out), truncated
        scores = torch.zeros(len(samples))
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault(s.group, []).append(i)
        for members in groups.values():
            for i in members:
                others = [j for j in members if j != i]
                if others:
                    gate = None if gates is None else gates[[i] * len(others)]
                    pref = self.loss.preference(out[[i] * len(others)], out[others], gate=gate)
                    scores[i] = pref.mean()
        return scores, truncated

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        if not samples:
            return []
        raw, truncated = self.raw_scores(samples)
        scores = raw.clone()
        if self.normalize == "batch":
            scores = standardize(raw)
        elif self.normalize == "group":
            groups: dict[int, list[int]] = {}
            for i, s in enumerate(samples):
                groups.setdefault(s.group, []).append(i)
            for members in groups.values():
                scores[members] = standardize(raw[members])
        self._counts["batches"] += 1
        self._counts["samples"] += len(samples)
        self._counts["truncated"] += truncated
        return [
            RewardOutput(float(scores[i]), info={"raw": float(raw[i])}) for i in range(len(samples))
        ]

    def stats(self) -> dict[str, float]:
        return {f"rm/{k}": float(v) for k, v in self._counts.items()}


class RMEnsemble(Ensemble):
    """The `ensemble` transform over one rm.score per path (same options for each)."""

    def __init__(
        self,
        paths: list[str],
        mode: Literal["mean", "min", "median", "mean_minus_std"] = "mean",
        lam: float = 1.0,
        **score_options: Any,
    ):
        if not paths:
            raise ValueError("rm.ensemble: needs at least one reward-model path")
        super().__init__([RMScore(p, **score_options) for p in paths], mode, lam)
