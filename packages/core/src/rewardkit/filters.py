"""Group filters (registry "rewardkit.group_filters"): which prompt groups of a step train.

A filter looks at a step's scored samples and keeps or drops whole groups (all samples of
one prompt). The trainer samples more prompts until the step's batch is full again or
`max_resample_rounds` is reached (`fill_batch`). Built-in:

- `zero_variance`: DAPO's dynamic sampling (Yu et al. 2025, "DAPO", §3.2): a group whose
  rewards do not vary (all right, all wrong) has zero advantage and teaches nothing.

Plugins add others, e.g. `math.accuracy_band` (PRIME's accuracy band, Cui et al. 2025,
Algorithm 1). A filter is `filter(samples, scored) -> (B,) bool tensor`, True for the
samples to keep, the same for every sample of a group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from rewardkit.registry import GROUP_FILTERS
from rewardkit.rewards.scoring import ScoreResult
from rewardkit.types import Sample

ZERO_STD = 1e-6  # a group's rewards "do not vary" below this std (float32 rounding)


class GroupFilter(Protocol):
    def __call__(self, samples: list[Sample], scored: ScoreResult) -> torch.Tensor: ...


def groups_of(samples: list[Sample]) -> dict[int, list[int]]:
    """group -> the indices of its samples, in order of first appearance."""
    out: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        out.setdefault(s.group, []).append(i)
    return out


def zero_variance_fraction(samples: list[Sample], scores: torch.Tensor) -> float:
    """The share of groups whose scores do not vary (or that have one sample)."""
    groups = groups_of(samples)
    flat = sum(len(idx) < 2 or float(scores[idx].std()) < ZERO_STD for idx in groups.values())
    return flat / max(len(groups), 1)


@GROUP_FILTERS.register("zero_variance")
class ZeroVariance:
    """Keep the groups whose total rewards vary (std >= 1e-6); DAPO's dynamic sampling."""

    def __call__(self, samples: list[Sample], scored: ScoreResult) -> torch.Tensor:
        keep = torch.zeros(len(samples), dtype=torch.bool)
        for idx in groups_of(samples).values():
            keep[idx] = len(idx) > 1 and float(scored.total[idx].std()) >= ZERO_STD
        return keep


def build_group_filter(name: str | None, options: dict[str, Any]) -> GroupFilter | None:
    return None if name is None else GROUP_FILTERS.get(name)(**options)


Draw = Callable[[int], tuple[list[Sample], ScoreResult]]  # group offset -> scored samples


def fill_batch(
    draw: Draw, keep: GroupFilter, groups_wanted: int, max_rounds: int
) -> tuple[list[Sample], ScoreResult, dict[str, float]]:
    """Draw scored samples, keep the groups `keep` passes, draw more (new group ids) until
    `groups_wanted` groups are kept or `max_rounds` more rounds were drawn.

    If no group passes at all, the last round is returned unfiltered, and counted
    (`group_filter/unfiltered` = 1): a step always has a batch.
    """
    kept_samples: list[Sample] = []
    kept: list[ScoreResult] = []
    n_kept, offset, rounds = 0, 0, -1
    while rounds < max_rounds:
        rounds += 1
        samples, scored = draw(offset)
        mask = keep(samples, scored)
        if mask.shape != (len(samples),) or mask.dtype != torch.bool:
            raise ValueError(
                f"a group filter must return a ({len(samples)},) bool tensor, got "
                f"{tuple(mask.shape)} {mask.dtype}"
            )
        for group, idx in groups_of(samples).items():
            if mask[idx].any() != mask[idx].all():
                raise ValueError(f"a group filter kept part of group {group}: {mask[idx].tolist()}")
            if n_kept < groups_wanted and bool(mask[idx[0]]):
                kept_samples += [samples[i] for i in idx]
                kept.append(scored.select(idx))
                n_kept += 1
        offset = max(s.group for s in samples) + 1
        if n_kept >= groups_wanted:
            break
    stats = {
        "group_filter/rounds": float(rounds),
        "group_filter/groups_kept": float(n_kept),
        "group_filter/unfiltered": float(not kept),
    }
    if not kept:
        return samples, scored, stats
    return kept_samples, ScoreResult.concat(kept), stats
