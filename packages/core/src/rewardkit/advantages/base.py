"""Shared pieces of the advantage estimators: the base class, input checks, group statistics.

An estimator maps a `RolloutBatch` to a (B, T) float32 tensor of per-token advantages,
zero where `completion_mask` is 0. Groups are the prompt indices in `batch.groups`; they
need not be contiguous or sorted. Group statistics are computed in float64 and the
result is cast to float32 at the end.

`requires` names extra inputs an estimator needs the trainer to compute, e.g.
`frozenset({"entropy"})`: the trainer then fills `batch.entropies` (B,) with the mean
token entropy of each completion. Read it from the *instance* (an instance may need less
than its class, e.g. CANON on length needs no entropy).
"""

from __future__ import annotations

import torch

from rewardkit.types import RolloutBatch

GRPO_EPS = 1e-4  # the constant TRL adds to the std


class AdvantageEstimator:
    """Base class: subclass, set `requires`, implement `__call__`."""

    requires: frozenset[str] = frozenset()

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        raise NotImplementedError


def check_batch(batch: RolloutBatch, who: str) -> None:
    """Shapes and values every estimator relies on; raises ValueError naming the problem."""
    for field in ("scores", "groups", "completion_mask"):
        if not isinstance(getattr(batch, field), torch.Tensor):
            raise TypeError(
                f"{who}: batch.{field} must be a torch.Tensor, "
                f"got {type(getattr(batch, field)).__name__}"
            )
    mask = batch.completion_mask
    if mask.dim() != 2:
        raise ValueError(f"{who}: completion_mask must be (B, T), got shape {tuple(mask.shape)}")
    B = mask.shape[0]
    if batch.scores.shape != (B,):
        raise ValueError(
            f"{who}: scores must have shape ({B},) to match completion_mask, "
            f"got {tuple(batch.scores.shape)}"
        )
    if batch.groups.shape != (B,):
        raise ValueError(f"{who}: groups must have shape ({B},), got {tuple(batch.groups.shape)}")
    if batch.groups.is_floating_point() or batch.groups.dtype == torch.bool:
        raise ValueError(f"{who}: groups must be integer prompt indices, got {batch.groups.dtype}")
    bad = (~torch.isfinite(batch.scores.double())).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"{who}: scores are NaN or infinite for samples {bad} "
            f"(values {[batch.scores[i].item() for i in bad]})"
        )


def group_inverse(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inverse, counts): inverse[i] = 0..n_groups-1 for sample i, counts per group."""
    _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    return inverse, counts


def group_sum(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of `values` over the sample's group, shape (B,)."""
    inverse, counts = group_inverse(groups)
    sums = torch.zeros(len(counts), dtype=values.dtype, device=values.device)
    sums.index_add_(0, inverse, values)
    return sums[inverse]


def group_mean(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """mean_g: per-sample mean of `values` over the sample's group, shape (B,)."""
    inverse, counts = group_inverse(groups)
    return group_sum(values, groups) / counts[inverse].to(values.dtype)


def group_std(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """std_g with Bessel's correction (torch.std's default, as TRL uses); 0 for a group of 1."""
    inverse, counts = group_inverse(groups)
    n = counts[inverse].to(values.dtype)
    sq = group_sum((values - group_mean(values, groups)) ** 2, groups)
    return torch.where(n > 1, sq / (n - 1).clamp(min=1), torch.zeros_like(sq)).sqrt()


def broadcast(per_sample: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Spread a (B,) advantage over each sample's policy tokens: (B, T) float32."""
    return (per_sample.double()[:, None] * (mask > 0).double()).float()
