"""Discounted returns-to-go, the one implementation the estimators share (`process`,
PRIME, GiGPO's step returns).

    G_t = Σ_{s ≥ t} γ^(s−t) · r_s          along the last dimension, computed backwards
"""

from __future__ import annotations

import torch


def returns_to_go(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G with the shape and dtype of `rewards` (..., T)."""
    out = torch.zeros_like(rewards)
    if rewards.shape[-1] == 0:
        return out
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    return out
