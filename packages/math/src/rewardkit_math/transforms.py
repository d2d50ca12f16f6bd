"""`math.clip` and `math.delta`: PRM step rewards that cannot be farmed.

"On Designing Effective RL Reward at Training Time for LLM Reasoning" (Gao et al. 2024,
arXiv 2410.15115), spec section 5. For step rewards r_1..r_K from a PRM:

    Clip:   r̃_k = min(r_k − η, 0)                    (η default 0.9 for PRMs in [0, 1])
    Delta:  r̃_k = r_k − r_{k+1} for k < K;  r̃_K = 0 (`delta_last="zero"`) or r_K ("keep")

Clip makes every step reward ≤ 0, so no prefix earns more than 0; Delta telescopes, so
the return of the prefix of steps 1..m is r_1 − r_{m+1} (or r_1 with the last step kept),
bounded by the PRM's range however many steps there are. Either way, repeating a step
cannot farm reward.

Like core's transforms (`rewardkit.rewards.transforms`), each is a batch reward that wraps
another reward (an object or a REWARDS name, e.g. `Clip("math.prm")`) and rewrites its
step rewards; they compose by wrapping: `Delta(Clip("math.prm"))` is Clip then Delta.
The new step rewards keep their step-end tokens and are meant to be added to the success
reward by a process estimator (core's `process`). So the output's `score` is 0 by default
(`score="zero"`: the process reward is not counted in the outcome a second time); `"sum"`
makes it the sum of the new step rewards and `"keep"` keeps the wrapped score. Token
rewards of the wrapped reward, which no longer match the new step rewards, are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rewardkit.rewards.base import Reward
from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.rewards.transforms import call_reward, resolve_reward, reward_name
from rewardkit.types import RewardOutput, Sample

ScoreMode = Literal["zero", "sum", "keep"]


def clip_steps(rewards: Sequence[float], eta: float = 0.9) -> list[float]:
    """r̃_k = min(r_k − η, 0)."""
    return [min(r - eta, 0.0) for r in rewards]


def delta_steps(rewards: Sequence[float], last: Literal["zero", "keep"] = "zero") -> list[float]:
    """r̃_k = r_k − r_{k+1} (k < K), r̃_K = 0 or r_K."""
    if last not in ("zero", "keep"):
        raise ValueError(f"delta_last must be 'zero' or 'keep', got {last!r}")
    rewards = list(rewards)
    out = [a - b for a, b in zip(rewards, rewards[1:], strict=False)]
    if rewards:
        out.append(0.0 if last == "zero" else rewards[-1])
    return out


class _StepTransform:
    who = "step transform"

    def __init__(self, reward: Reward | str, score: ScoreMode = "zero"):
        if score not in ("zero", "sum", "keep"):
            raise ValueError(f"{self.who}: score must be 'zero', 'sum' or 'keep', got {score!r}")
        self.reward = resolve_reward(reward)
        self.score = score
        self.name = f"{self.who}({reward_name(self.reward)})"

    def steps(self, rewards: list[float]) -> list[float]:
        raise NotImplementedError

    def wrapped(self) -> list[Reward]:
        return [self.reward]

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        out = []
        for i, o in enumerate(call_reward(self.reward, samples, self.who, context)):
            if o.step_rewards is None:
                raise ValueError(
                    f"{self.who}: wrapped reward {reward_name(self.reward)!r} gave no "
                    f"step_rewards for sample {i}; wrap a process reward such as math.prm"
                )
            new = self.steps(list(o.step_rewards))
            score = {"zero": 0.0, "sum": sum(new), "keep": o.score}[self.score]
            info = {"raw": o.score, "raw_step_rewards": list(o.step_rewards)}
            if o.info:
                info["inner"] = o.info
            out.append(
                RewardOutput(score, step_rewards=new, step_ends=list(o.step_ends), info=info)
            )
        return out


class Clip(_StepTransform):
    """r̃_k = min(r_k − η, 0) on the wrapped reward's steps; `eta` default 0.9."""

    who = "math.clip"

    def __init__(self, reward: Reward | str, eta: float = 0.9, score: ScoreMode = "zero"):
        super().__init__(reward, score)
        self.eta = float(eta)

    def steps(self, rewards: list[float]) -> list[float]:
        return clip_steps(rewards, self.eta)


class Delta(_StepTransform):
    """r̃_k = r_k − r_{k+1}, last step 0 (`delta_last="zero"`) or r_K (`"keep"`)."""

    who = "math.delta"

    def __init__(
        self,
        reward: Reward | str,
        delta_last: Literal["zero", "keep"] = "zero",
        score: ScoreMode = "zero",
    ):
        delta_steps([], delta_last)  # validates before the wrapped reward is built
        super().__init__(reward, score)
        self.delta_last = delta_last

    def steps(self, rewards: list[float]) -> list[float]:
        return delta_steps(rewards, self.delta_last)
