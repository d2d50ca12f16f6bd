"""Outcome-only group estimators: GRPO, Dr. GRPO and RLOO.

Each computes one advantage A_i per sample from the scalar rewards r_i of its group g
and broadcasts it over the sample's policy tokens (zero where completion_mask is 0).
"""

from __future__ import annotations

from typing import Literal

import torch

from rewardkit.advantages.base import (
    GRPO_EPS,
    AdvantageEstimator,
    broadcast,
    check_batch,
    group_inverse,
    group_mean,
    group_std,
)
from rewardkit.registry import ADVANTAGES
from rewardkit.types import RolloutBatch


@ADVANTAGES.register("grpo")
class GRPOAdvantage(AdvantageEstimator):
    """GRPO (Shao et al. 2024, "DeepSeekMath", eq. of outcome supervision):

        A_i = (r_i − mean_g) / (std + 1e-4)

    `scale` picks the std: "group" = std_g over i's group, "batch" = std of all B scores,
    "none" = no division (A_i = r_i − mean_g). The std is the same one TRL uses: Bessel-
    corrected (unbiased, torch.std's default), and 0 for a group (or batch) of one sample,
    so a lone sample gets advantage 0.
    """

    def __init__(self, scale: Literal["group", "batch", "none"] = "group", eps: float = GRPO_EPS):
        if scale not in ("group", "batch", "none"):
            raise ValueError(f"grpo: scale must be 'group', 'batch' or 'none', got {scale!r}")
        self.scale = scale
        self.eps = eps

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "grpo")
        r = batch.scores.double()
        adv = r - group_mean(r, batch.groups)
        if self.scale == "group":
            adv = adv / (group_std(r, batch.groups) + self.eps)
        elif self.scale == "batch":
            std = r.std() if r.numel() > 1 else r.new_zeros(())
            adv = adv / (std + self.eps)
        return broadcast(adv, batch.completion_mask)


@ADVANTAGES.register("dr_grpo")
class DrGRPOAdvantage(AdvantageEstimator):
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): A_i = r_i − mean_g,
    without the std division (the length normalisation is the loss's job)."""

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "dr_grpo")
        r = batch.scores.double()
        return broadcast(r - group_mean(r, batch.groups), batch.completion_mask)


@ADVANTAGES.register("rloo")
class RLOOAdvantage(AdvantageEstimator):
    """RLOO (Ahmadian et al. 2024, "Back to Basics"): leave-one-out baseline

        A_i = r_i − (1/(G−1)) Σ_{j≠i, j∈g} r_j  =  G/(G−1) · (r_i − mean_g)

    A group of size 1 has no other sample to compare with: its advantage is 0.
    """

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "rloo")
        r = batch.scores.double()
        inverse, counts = group_inverse(batch.groups)
        n = counts[inverse].to(r.dtype)
        adv = torch.where(n > 1, n / (n - 1).clamp(min=1), torch.zeros_like(n))
        adv = adv * (r - group_mean(r, batch.groups))
        return broadcast(adv, batch.completion_mask)
