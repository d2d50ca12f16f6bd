"""GiGPO: group-in-group advantages, episode level plus anchor-state step level.

Paper: "Group-in-Group Policy Optimization for LLM Agent Training" (arXiv 2505.10978).
Within each prompt group of trajectories with outcome rewards R_i and step rewards r_k:

    episode advantage  A^E(i)   = (R_i - mean_g R) / F            (F = 1 or std_g R + eps)
    step return        R^S_t    = sum_{k >= t} gamma^(k-t) r_k
    anchor groups      the steps of the group whose current state is identical
                       (across trajectories and within one trajectory)
    step advantage     A^S(i,t) = (R^S_t - mean_anchor R^S) / F   (F over the anchor group;
                                   0 for an anchor group of one step)
    final              A(i,t)   = A^E(i) + omega * A^S(i,t)

F is the unbiased sample std plus eps with normalization="std", and 1 with "none".
Step rewards are the environment's ``turn.reward`` (step_rewards="turn") or, for
outcome-only settings, R_i placed on the last step (step_rewards="outcome").
The "current state" is `trajectories.default_state` unless `state_fn` is given.
Policy tokens outside every turn get A^E(i).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable

import torch

from rewardkit.advantages.returns import returns_to_go
from rewardkit.types import RolloutBatch
from rewardkit_agents.trajectories import (
    batch_turns,
    default_state,
    group_advantages,
    resolve_callable,
    spread_steps,
)


def discounted_returns(rewards: list[float], gamma: float) -> list[float]:
    """R^S_t = sum_{k >= t} gamma^(k-t) r_k (core's `returns_to_go`)."""
    return returns_to_go(torch.tensor(rewards, dtype=torch.float64), gamma).tolist()


class GiGPO:
    """Advantage estimator `agents.gigpo` (options: gamma, omega, normalization, ...)."""

    requires = frozenset({"turns"})

    def __init__(
        self,
        gamma: float = 0.95,
        omega: float = 1.0,
        normalization: str = "std",
        step_rewards: str = "turn",
        eps: float = 1e-6,
        state_fn: str | Callable[..., Hashable] | None = None,
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if normalization not in ("std", "none"):
            raise ValueError(f"normalization must be 'std' or 'none', got {normalization!r}")
        if step_rewards not in ("turn", "outcome"):
            raise ValueError(f"step_rewards must be 'turn' or 'outcome', got {step_rewards!r}")
        self.gamma = gamma
        self.omega = omega
        self.normalization = normalization
        self.step_rewards = step_rewards
        self.eps = eps
        self.state_fn = (
            default_state if state_fn is None else resolve_callable(state_fn, "state_fn")
        )

    def step_advantages(self, batch: RolloutBatch) -> tuple[torch.Tensor, list[list[float]]]:
        """(A^E per sample, A^S per sample and step)."""
        return self._compute(batch)[1:]

    def _compute(self, batch: RolloutBatch) -> tuple[list, torch.Tensor, list[list[float]]]:
        turns = batch_turns(batch, "agents.gigpo")
        estimator = "grpo" if self.normalization == "std" else "grpo_no_std"
        episode = group_advantages(batch.scores, batch.groups, estimator, self.eps)
        groups, scores = batch.groups.tolist(), batch.scores.tolist()

        returns: list[list[float]] = []
        anchors: dict[tuple[int, Hashable], list[tuple[int, int]]] = defaultdict(list)
        for i, sample_turns in enumerate(turns):
            if self.step_rewards == "turn":
                rewards = [float(turn.reward) for turn in sample_turns]
            else:
                rewards = [0.0] * len(sample_turns)
                if rewards:
                    rewards[-1] = scores[i]
            returns.append(discounted_returns(rewards, self.gamma))
            for t in range(len(sample_turns)):
                anchors[(groups[i], self.state_fn(sample_turns, t))].append((i, t))

        step_adv = [[0.0] * len(x) for x in turns]
        for members in anchors.values():
            n = len(members)
            if n < 2:
                continue  # a singleton anchor group has no baseline: A^S = 0
            values = [returns[i][t] for i, t in members]
            mean = sum(values) / n
            centred = [v - mean for v in values]
            std = math.sqrt(sum(c * c for c in centred) / (n - 1))  # unbiased, as torch.std
            if self.normalization == "std" and std > 0:  # std 0: all centred values are 0
                centred = [c / (std + self.eps) for c in centred]
            for (i, t), a in zip(members, centred, strict=True):
                step_adv[i][t] = a
        return turns, episode, step_adv

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        turns, episode, step_adv = self._compute(batch)
        episode_list = episode.tolist()
        combined = [
            [episode_list[i] + self.omega * a for a in sample_steps]
            for i, sample_steps in enumerate(step_adv)
        ]
        return spread_steps(batch, turns, combined, episode)
