"""`process`: outcome advantage plus the return-to-go of baselined process rewards.

A token's process advantage is the (discounted) sum of the process rewards at or after it,
minus a group baseline. With a discount γ (default 1) counted in token positions:

    P_it    = Σ_{s ≥ t} γ^(s−t) · R_is − b_i                 (return-to-go, baselined)
    A_it    = m_it · (A^outcome_it + P_it)

`baseline` chooses b (the group g is i's prompt):

- "sample" (default): b_g = mean over the samples j of g of their process return
  G_j0 = Σ_s γ^s · R_js (from the first token), the same for every token. A baseline that does not count steps: with rewards
  that are ≤ 0 per step (Clip, "On Designing Effective RL Reward at Training Time for LLM
  Reasoning", Gao et al. 2024) or that telescope (Delta), repeating a step can never raise
  an advantage, which is what those transforms exist for.
- "step": the process-supervision variant of GRPO (Shao et al. 2024, "DeepSeekMath",
  §4.1.3, without its std division): every process reward is centred by the mean of all
  process rewards of its group, c_is = R_is − mean_{(j, s) in g} R_js, and
  P_it = Σ_{s ≥ t} γ^(s−t) · c_is. Each reward position then adds −mean to the return, so
  when the group's mean is < 0 (always, under Clip) a sample earns advantage by adding
  steps: farming. Kept for comparison with DeepSeekMath; do not pair it with Clip/Delta.
- "none": b = 0; the outcome estimator alone supplies the baseline.

Reward positions: with `batch.token_rewards` (B, T), every policy token (m_it = 1) of the
sample; a non-zero token reward on a token with m_it = 0 is an error (put environment
feedback in step rewards instead). Without token rewards, each step reward k of sample i
sits at its step-end token `step_ends[k]` (which may be an environment token: it is not a
policy token, but its reward still flows back to the policy tokens before it). Token
rewards take precedence when a batch has both. A group without reward positions has
b_g = 0. The outcome part is any registered estimator (`outcome`, default "grpo", with
`outcome_options`); `outcome=None` keeps only the process part. Rewards that give token
rewards should not also count them in the outcome score, or they are counted twice.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from rewardkit.advantages.base import AdvantageEstimator, check_batch, group_mean, group_sum
from rewardkit.advantages.returns import returns_to_go
from rewardkit.registry import ADVANTAGES
from rewardkit.types import RolloutBatch


@ADVANTAGES.register("process")
class ProcessAdvantage(AdvantageEstimator):
    def __init__(
        self,
        outcome: str | None = "grpo",
        outcome_options: dict[str, Any] | None = None,
        gamma: float = 1.0,
        baseline: Literal["sample", "step", "none"] = "sample",
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"process: gamma must be in [0, 1], got {gamma}")
        if baseline not in ("sample", "step", "none"):
            raise ValueError(
                f"process: baseline must be 'sample', 'step' or 'none', got {baseline!r}"
            )
        self.baseline = baseline
        if outcome == "process":
            raise ValueError("process: the outcome estimator cannot be 'process' itself")
        self.gamma = float(gamma)
        self.outcome = (
            None if outcome is None else ADVANTAGES.get(outcome)(**(outcome_options or {}))
        )
        self.requires = frozenset(getattr(self.outcome, "requires", frozenset()))

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "process")
        mask = batch.completion_mask > 0
        rewards, positions = _process_rewards(batch)
        rewards = rewards * positions
        if self.baseline == "step":
            n_pos = group_sum(positions.sum(dim=1).double(), batch.groups)
            total = group_sum(rewards.sum(dim=1), batch.groups)
            mean = torch.where(n_pos > 0, total / n_pos.clamp(min=1), torch.zeros_like(total))
            rewards = (rewards - mean[:, None]) * positions
        to_go = returns_to_go(rewards, self.gamma)
        if self.baseline == "sample" and to_go.shape[1]:  # the return from the first token
            to_go = to_go - group_mean(to_go[:, 0], batch.groups)[:, None]
        adv = to_go
        if self.outcome is not None:
            adv = adv + self.outcome(batch).double()
        return (adv * mask).float()


def _process_rewards(batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, positions): dense (B, T) float64 process rewards and a bool mask of where
    rewards sit, from token rewards or else from step rewards at their step ends."""
    mask = batch.completion_mask > 0
    B, T = mask.shape
    if batch.token_rewards is not None:
        tr = batch.token_rewards
        if tr.shape != (B, T):
            raise ValueError(f"process: token_rewards must be ({B}, {T}), got {tuple(tr.shape)}")
        if not torch.isfinite(tr).all():
            raise ValueError("process: token_rewards contain NaN or infinite values")
        off = ((tr != 0) & ~mask).nonzero().tolist()
        if off:
            raise ValueError(
                f"process: non-zero token rewards on tokens with completion_mask 0 at "
                f"(sample, token) {off[:5]}; give environment feedback as step rewards"
            )
        return tr.double(), mask.clone()
    if batch.step_rewards is None or batch.step_ends is None:
        raise ValueError(
            "process: the batch has neither token_rewards nor step_rewards; use an outcome "
            "estimator such as 'grpo', or a reward that returns token or step rewards"
        )
    if len(batch.step_rewards) != B or len(batch.step_ends) != B:
        raise ValueError(
            f"process: step_rewards/step_ends must have one entry per sample ({B}), got "
            f"{len(batch.step_rewards)}/{len(batch.step_ends)}"
        )
    rewards = torch.zeros(B, T, dtype=torch.float64, device=mask.device)
    positions = torch.zeros(B, T, dtype=torch.bool, device=mask.device)
    for i, (steps, ends) in enumerate(zip(batch.step_rewards, batch.step_ends, strict=True)):
        if steps is None:
            continue
        if ends is None or len(ends) != len(steps):
            raise ValueError(f"process: sample {i} has {len(steps)} step rewards but ends {ends}")
        for k, (r, e) in enumerate(zip(steps, ends, strict=True)):
            if not math.isfinite(r):
                raise ValueError(f"process: step reward {k} of sample {i} is {r}")
            if not 0 <= e < T:
                raise ValueError(
                    f"process: step {k} of sample {i} ends at token {e}, outside [0, {T})"
                )
            if k > 0 and e <= ends[k - 1]:
                raise ValueError(f"process: step_ends of sample {i} must increase, got {ends}")
            rewards[i, e] = r
            positions[i, e] = True
    return rewards, positions
