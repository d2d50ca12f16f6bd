"""CANON: Conditional advANtage estimatiON ("Conditional Advantage Estimation for
Reinforcement Learning in Large Reasoning Models").

Each group is sorted ascending by a metric m (stable sort: ties keep batch order):
`entropy` = mean token entropy of the completion (`batch.entropies`, filled by the trainer
because this estimator `requires` "entropy"), `length` = number of policy tokens
(completion_mask sum). C⁻ = the first ⌊G/2⌋ samples, C⁺ = the rest; μ⁻, μ⁺ are their mean
rewards. λ mixes the inter-group term (compare with the other half) and the intra-group
term (compare within one's half), α scales, β offsets:

  entropy:  i∈C⁺: A_i = [λ(r_i − α·μ⁻ + β) + (1−λ)(r_i − μ⁺)] / L
            i∈C⁻: A_i = [λ(α·r_i − μ⁺ − β) + (1−λ)(r_i − μ⁻)] / L
  length:   i∈C⁺: A_i = [λ(α·r_i − μ⁻ + β) + (1−λ)(r_i − μ⁺)] / L
            i∈C⁻: A_i = [λ(r_i − α·μ⁺ − β) + (1−λ)(r_i − μ⁻)] / L

L = batch.max_completion_length when `divide_by_max_length` (for a loss that sums tokens
per sequence), else 1. A group of one sample has no C⁻: its advantage is 0.

What λ = 0.5, α = 1, β = 0 gives: both halves get (r_i − (μ⁻ + μ⁺)/2)/L. For an even G the
halves have equal size, (μ⁻ + μ⁺)/2 = mean_g, and this is exactly Dr. GRPO (divided by L).
For an odd G, C⁺ has one sample more than C⁻ and the baseline is the mean of the two half
means, not the group mean, so it differs from Dr. GRPO.
"""

from __future__ import annotations

from typing import Literal

import torch

from rewardkit.advantages.base import AdvantageEstimator, broadcast, check_batch
from rewardkit.registry import ADVANTAGES
from rewardkit.types import RolloutBatch


@ADVANTAGES.register("canon")
class CANONAdvantage(AdvantageEstimator):
    requires: frozenset[str] = frozenset({"entropy"})  # instance: only for metric="entropy"

    def __init__(
        self,
        metric: Literal["entropy", "length"] = "entropy",
        alpha: float = 1.0,
        lam: float = 1.0,
        beta: float = 0.0,
        divide_by_max_length: bool = False,
    ):
        if metric not in ("entropy", "length"):
            raise ValueError(f"canon: metric must be 'entropy' or 'length', got {metric!r}")
        self.metric = metric
        self.alpha, self.lam, self.beta = float(alpha), float(lam), float(beta)
        self.divide_by_max_length = divide_by_max_length
        self.requires = frozenset({"entropy"}) if metric == "entropy" else frozenset()

    def _metric(self, batch: RolloutBatch) -> torch.Tensor:
        if self.metric == "length":
            return batch.lengths.double()
        ent = batch.entropies
        if ent is None:
            raise ValueError(
                "canon(metric='entropy') needs batch.entropies (B,): the trainer fills it when "
                "the estimator's `requires` contains 'entropy'"
            )
        B = batch.scores.shape[0]
        if not isinstance(ent, torch.Tensor) or ent.shape != (B,):
            shape = tuple(ent.shape) if isinstance(ent, torch.Tensor) else type(ent).__name__
            raise ValueError(f"canon: entropies must have shape ({B},), got {shape}")
        if not torch.isfinite(ent).all():
            raise ValueError(f"canon: entropies contain NaN or infinite values: {ent.tolist()}")
        return ent.double()

    def _length_scale(self, batch: RolloutBatch) -> float:
        if not self.divide_by_max_length:
            return 1.0
        L = batch.max_completion_length
        if L is None or L <= 0:
            raise ValueError(
                f"canon(divide_by_max_length=True) needs batch.max_completion_length > 0, got {L!r}"
            )
        return float(L)

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "canon")
        r = batch.scores.double()
        m = self._metric(batch)
        L = self._length_scale(batch)
        a, lam, b = self.alpha, self.lam, self.beta
        adv = torch.zeros_like(r)
        for g in torch.unique(batch.groups):
            idx = (batch.groups == g).nonzero().flatten()
            if len(idx) < 2:
                continue  # no C⁻ to compare with: advantage 0
            order = torch.sort(m[idx], stable=True).indices
            neg, pos = idx[order[: len(idx) // 2]], idx[order[len(idx) // 2 :]]
            mu_neg, mu_pos = r[neg].mean(), r[pos].mean()
            if self.metric == "entropy":
                inter_pos = r[pos] - a * mu_neg + b
                inter_neg = a * r[neg] - mu_pos - b
            else:
                inter_pos = a * r[pos] - mu_neg + b
                inter_neg = r[neg] - a * mu_pos - b
            adv[pos] = (lam * inter_pos + (1 - lam) * (r[pos] - mu_pos)) / L
            adv[neg] = (lam * inter_neg + (1 - lam) * (r[neg] - mu_neg)) / L
        return broadcast(adv, batch.completion_mask)
