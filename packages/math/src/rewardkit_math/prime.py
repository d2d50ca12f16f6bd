"""`math.prime`: PRIME advantages and its accuracy-band prompt filter.

"Process Reinforcement through Implicit Rewards" (Cui et al. 2025, arXiv 2502.01456),
spec section 4. With verifier outcome rewards r_i (`batch.scores`), implicit-PRM token
rewards r_φ(i, s) (`batch.token_rewards`), groups g (one per prompt), policy tokens m_is
and |y_j| = Σ_s m_js:

    outcome reward   o(i, s)  = r_i − mean_{j≠i, j∈g} r_j     at i's last policy token (RLOO)
    process reward   p(i, s)  = m_is·[r_φ(i, s) − mean_{j≠i, j∈g} (Σ_s r_φ(j, s) / |y_j|)]
    return           G(i, t)  = Σ_{s≥t} γ^{s−t} [c_o·o(i, s) + c_p·p(i, s)]
    advantage        A(i, t)  = m_it·(G(i, t) − μ) / sqrt(σ² + 1e-8)

μ and σ² are the mean and the unbiased variance of G over every policy token of the
batch (PRIME's `masked_whiten`). γ = 1, c_o = c_p = 1 by default. A prompt needs at least
two samples (the leave-one-out baseline).

The implicit PRM is trained online by `math.implicit_prm` through the trainer's
learned-reward hook (its `online_update`: before or after scoring), and PRIME's accuracy
band on the policy's prompts is the group filter `math.accuracy_band` (`AccuracyBand`).
"""

from __future__ import annotations

import torch

from rewardkit.advantages.base import AdvantageEstimator, check_batch, group_inverse, group_sum
from rewardkit.advantages.returns import returns_to_go
from rewardkit.types import RolloutBatch

WHITEN_EPS = 1e-8


def leave_one_out_mean(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """mean_{j≠i, j∈g(i)} values_j for every i; a group of one sample is an error."""
    inverse, counts = group_inverse(groups)
    n = counts[inverse].to(values.dtype)
    if (n < 2).any():
        lonely = groups[n < 2].unique().tolist()
        raise ValueError(f"prime: groups {lonely} have a single sample; RLOO needs >= 2 per prompt")
    return (group_sum(values, groups) - values) / (n - 1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x − μ)/sqrt(σ² + 1e-8) with μ, unbiased σ² over the masked entries; 0 elsewhere."""
    m = mask.to(values.dtype)
    n = m.sum()
    if n < 2:
        raise ValueError(f"prime: whitening needs at least 2 policy tokens, the batch has {int(n)}")
    mean = (values * m).sum() / n
    var = (((values - mean) ** 2) * m).sum() / (n - 1)
    return (values - mean) / torch.sqrt(var + WHITEN_EPS) * m


class PRIMEAdvantage(AdvantageEstimator):
    """PRIME's advantage (module docstring). Options: gamma, outcome_coef (c_o),
    process_coef (c_p)."""

    requires: frozenset[str] = frozenset()

    def __init__(
        self,
        gamma: float = 1.0,
        outcome_coef: float = 1.0,
        process_coef: float = 1.0,
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"prime: gamma must be in [0, 1], got {gamma}")
        self.gamma = float(gamma)
        self.outcome_coef = float(outcome_coef)
        self.process_coef = float(process_coef)

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        mask = batch.completion_mask > 0
        return masked_whiten(self.returns(batch), mask).float()

    def returns(self, batch: RolloutBatch) -> torch.Tensor:
        """G(i, t) before whitening, (B, T) float64, 0 after the last policy token."""
        check_batch(batch, "prime")
        mask = batch.completion_mask > 0
        B, T = mask.shape
        lengths = mask.sum(dim=1)
        if (lengths == 0).any():
            empty = (lengths == 0).nonzero().flatten().tolist()
            raise ValueError(f"prime: samples {empty} have no policy tokens")
        rewards = torch.zeros(B, T, dtype=torch.float64)
        if self.outcome_coef:
            outcome = batch.scores.double() - leave_one_out_mean(
                batch.scores.double(), batch.groups
            )
            last = torch.arange(T).expand(B, T).masked_fill(~mask, -1).max(dim=1).values
            rewards[torch.arange(B), last] += self.outcome_coef * outcome
        if self.process_coef:
            if batch.token_rewards is None:
                raise ValueError(
                    "prime: the batch has no token_rewards; add the math.implicit_prm reward "
                    "(score='zero') or set process_coef=0"
                )
            if batch.token_rewards.shape != (B, T):
                raise ValueError(
                    f"prime: token_rewards must be ({B}, {T}), got {tuple(batch.token_rewards.shape)}"
                )
            tr = batch.token_rewards.double() * mask
            mean_per_token = tr.sum(dim=1) / lengths.double()
            baseline = leave_one_out_mean(mean_per_token, batch.groups)
            rewards += self.process_coef * (tr - baseline[:, None]) * mask
        return returns_to_go(rewards, self.gamma) * mask


def accuracy_filter(
    scores: torch.Tensor, groups: torch.Tensor, low: float = 0.2, high: float = 0.8
) -> torch.Tensor:
    """PRIME's online prompt filter: a (B,) bool mask keeping the samples of prompts whose
    accuracy (mean verifier score of the group) lies strictly inside (low, high)."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"accuracy band must satisfy 0 <= low < high <= 1, got ({low}, {high})")
    if scores.shape != groups.shape or scores.dim() != 1:
        raise ValueError(
            f"scores {tuple(scores.shape)} and groups {tuple(groups.shape)} must be equal (B,)"
        )
    inverse, counts = group_inverse(groups)
    accuracy = group_sum(scores.double(), groups) / counts[inverse]
    return (accuracy > low) & (accuracy < high)


class AccuracyBand:
    """Group filter `math.accuracy_band`: PRIME's online prompt filter on the policy side
    (Cui et al. 2025, Algorithm 1: "filter prompts by accuracy"). A prompt's accuracy is the
    mean of its samples' `reward` scores (the verifier, 0/1); the trainer keeps the groups
    with low < accuracy < high and samples more prompts to refill the batch
    (`group_filter: math.accuracy_band`, `group_filter_options: {low, high, reward}`)."""

    def __init__(self, low: float = 0.2, high: float = 0.8, reward: str = "math.accuracy"):
        accuracy_filter(torch.zeros(1), torch.zeros(1, dtype=torch.long), low, high)  # checks
        self.low, self.high, self.reward = float(low), float(high), reward

    def __call__(self, samples, scored) -> torch.Tensor:
        if self.reward not in scored.raw:
            raise ValueError(
                f"math.accuracy_band reads reward {self.reward!r}, which this run does not "
                f"have; its rewards are {sorted(scored.raw)} (set group_filter_options.reward)"
            )
        scores = torch.tensor(scored.raw[self.reward], dtype=torch.float64)
        groups = torch.tensor([s.group for s in samples])
        return accuracy_filter(scores, groups, self.low, self.high)
