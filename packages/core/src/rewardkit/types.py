"""The data that flows between rollouts, rewards, advantage estimators and the trainer.

One `Sample` per completion; a `RolloutBatch` is the padded, tensor view of a list of
samples that advantage estimators consume. Rewards return `RewardOutput` (or a float).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

Prompt = str | list[dict[str, str]]  # plain text or chat messages


@dataclass
class Turn:
    """One turn of a multi-turn rollout: the completion tokens [start, end) it spans.

    `action` is what the policy wrote, `observation` what the environment answered
    (its tokens follow the action's and carry completion_mask 0).
    """

    start: int
    end: int
    action: str = ""
    observation: str = ""
    state: Any = None  # hashable environment state before the action (SALT / GiGPO), when known
    reward: float = 0.0
    next_state: Any = None  # the environment state after the action, when known


@dataclass
class Sample:
    """One rollout: a prompt, the completion sampled for it, and what the dataset knows."""

    prompt: Prompt
    completion: str
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    completion_mask: list[int] | None = None  # 1 = policy token, 0 = tool/environment token
    group: int = 0  # index of the prompt this sample was drawn for
    meta: dict[str, Any] = field(default_factory=dict)  # dataset row: answers, tests, ids ...
    turns: list[Turn] | None = None
    truncated: bool = False  # cut by the length limit

    def __post_init__(self) -> None:
        if self.completion_mask is None:
            self.completion_mask = [1] * len(self.completion_ids)
        if len(self.completion_mask) != len(self.completion_ids):
            raise ValueError(
                f"completion_mask has {len(self.completion_mask)} entries but the sample has "
                f"{len(self.completion_ids)} completion tokens"
            )


@dataclass
class RewardOutput:
    """What a reward says about one sample.

    `score` is the outcome reward. `token_rewards` has one value per completion token;
    `step_rewards[k]` is the reward of step k, which ends at completion token
    `step_ends[k]` (inclusive). `info` is a small dict logged per sample.
    """

    score: float
    token_rewards: list[float] | None = None
    step_rewards: list[float] | None = None
    step_ends: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.step_rewards is None) != (self.step_ends is None):
            raise ValueError("step_rewards and step_ends must be given together")
        if self.step_rewards is not None and len(self.step_rewards) != len(self.step_ends):
            raise ValueError(
                f"{len(self.step_rewards)} step_rewards but {len(self.step_ends)} step_ends"
            )

    @staticmethod
    def coerce(value: RewardOutput | float | int | bool) -> RewardOutput:
        """Accept a plain number where a reward has nothing more to say."""
        if isinstance(value, RewardOutput):
            return value
        if isinstance(value, bool | int | float):
            return RewardOutput(score=float(value))
        try:  # numpy / torch scalars
            return RewardOutput(score=float(value))
        except (TypeError, ValueError):
            raise TypeError(
                f"a reward must return a RewardOutput or a number, got {type(value).__name__}"
            ) from None


@dataclass
class RolloutBatch:
    """Padded tensor view of B samples, what advantage estimators read.

    scores: (B,) combined outcome reward; groups: (B,) prompt index per sample;
    completion_mask: (B, T) float, 1 on policy tokens; token_rewards: (B, T) or None;
    step_rewards / step_ends: per-sample lists or None; entropies: (B,) mean token entropy
    of each completion when the trainer computed it; turns: per-sample turn lists.
    `max_completion_length` is the generation limit (Dr. GRPO's constant).
    """

    scores: torch.Tensor
    groups: torch.Tensor
    completion_mask: torch.Tensor
    token_rewards: torch.Tensor | None = None
    step_rewards: list[list[float] | None] | None = None
    step_ends: list[list[int] | None] | None = None
    entropies: torch.Tensor | None = None
    turns: list[list[Turn] | None] | None = None
    samples: list[Sample] | None = None
    max_completion_length: int | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(dim=1)

    @classmethod
    def from_samples(
        cls,
        samples: list[Sample],
        outputs: list[RewardOutput],
        scores: torch.Tensor | None = None,
        max_completion_length: int | None = None,
        entropies: torch.Tensor | None = None,
    ) -> RolloutBatch:
        """Pad samples and their reward outputs into tensors (right padding)."""
        if len(samples) != len(outputs):
            raise ValueError(f"{len(samples)} samples but {len(outputs)} reward outputs")
        B = len(samples)
        T = max((len(s.completion_ids) for s in samples), default=0)
        mask = torch.zeros(B, T)
        for i, s in enumerate(samples):
            mask[i, : len(s.completion_mask)] = torch.tensor(s.completion_mask, dtype=torch.float)
        token_rewards = None
        if any(o.token_rewards is not None for o in outputs):
            token_rewards = torch.zeros(B, T)
            for i, o in enumerate(outputs):
                if o.token_rewards is None:
                    continue
                n = len(samples[i].completion_ids)
                if len(o.token_rewards) != n:
                    raise ValueError(
                        f"sample {i}: {len(o.token_rewards)} token_rewards for {n} completion tokens"
                    )
                token_rewards[i, :n] = torch.tensor(o.token_rewards, dtype=torch.float)
        has_steps = any(o.step_rewards is not None for o in outputs)
        if scores is None:
            scores = torch.tensor([o.score for o in outputs], dtype=torch.float)
        return cls(
            scores=scores.float(),
            groups=torch.tensor([s.group for s in samples], dtype=torch.long),
            completion_mask=mask,
            token_rewards=token_rewards,
            step_rewards=[o.step_rewards for o in outputs] if has_steps else None,
            step_ends=[o.step_ends for o in outputs] if has_steps else None,
            entropies=entropies,
            turns=[s.turns for s in samples] if any(s.turns for s in samples) else None,
            samples=samples,
            max_completion_length=max_completion_length,
        )
