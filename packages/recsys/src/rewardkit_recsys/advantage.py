"""`recsys.bgae`: SRPO's bonus-calibrated group advantage (GREAM, arXiv 2510.20815, §3.3,
as in the authors' released code).

For a group of n samples with rewards s_i, c = number of exact hits (s_i ≥ hit_threshold,
1.0 by default) and K the pass@k size (4):

    A_i   = (s_i − mean s)/(std s + 1e-6)                     (unbiased std)
    ρ     = 1 − C(n−c, K)/C(n, K)                              (pass@K of the group)
    σ     = sqrt(ρ(1 − ρ))
    bonus = (1 − ρ)/(σ + 1e-6)                                  if sample i is a hit
          = (1 − ρ − C(n−c−1, K−1)/C(n−1, K−1))/(σ + 1e-6)      otherwise
    A_i  += bonus

C(a, b) = 0 when b < 0 or b > a; when c = 0 or c = n the bonus is 0. The advantage is
broadcast over each sample's policy tokens (zero where completion_mask is 0).
"""

from __future__ import annotations

from math import comb, sqrt

import torch

from rewardkit.advantages.base import (
    AdvantageEstimator,
    broadcast,
    check_batch,
    group_mean,
    group_std,
)
from rewardkit.types import RolloutBatch

EPS = 1e-6


def binom(a: int, b: int) -> int:
    """C(a, b), 0 out of range."""
    return comb(a, b) if 0 <= b <= a else 0


def passk_bonus(n: int, c: int, k: int, hit: bool) -> float:
    """The bonus term of one sample in a group of n with c hits (see the module docstring)."""
    if c == 0 or c == n:
        return 0.0
    rho = 1.0 - binom(n - c, k) / binom(n, k)
    sigma = sqrt(rho * (1.0 - rho))
    if hit:
        return (1.0 - rho) / (sigma + EPS)
    return (1.0 - rho - binom(n - c - 1, k - 1) / binom(n - 1, k - 1)) / (sigma + EPS)


class BGAE(AdvantageEstimator):
    """Bonus-calibrated group advantage estimator. Options: k (pass@k size, default 4),
    hit_threshold (a sample is an exact hit when its score ≥ this, default 1.0)."""

    requires: frozenset[str] = frozenset()

    def __init__(self, k: int = 4, hit_threshold: float = 1.0):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"recsys.bgae: k must be a positive int, got {k!r}")
        self.k, self.hit_threshold = k, float(hit_threshold)

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "recsys.bgae")
        s = batch.scores.double()
        adv = (s - group_mean(s, batch.groups)) / (group_std(s, batch.groups) + EPS)
        hits = s >= self.hit_threshold
        for g in torch.unique(batch.groups).tolist():
            idx = (batch.groups == g).nonzero().flatten()
            n, c = len(idx), int(hits[idx].sum())
            if n < self.k:
                raise ValueError(
                    f"recsys.bgae: group {g} has {n} samples but k={self.k}; "
                    f"pass@k needs num_generations >= k"
                )
            for i in idx.tolist():
                adv[i] += passk_bonus(n, c, self.k, bool(hits[i]))
        return broadcast(adv, batch.completion_mask)
