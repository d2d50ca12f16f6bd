"""The clipped GRPO objective, per token, and its aggregation weights.

Shao et al. 2024 (DeepSeekMath, GRPO) with the variants as TRL defines them
(specs/core.md §1):

    ρ_it = exp(logπθ(y_it) − logπ_old(y_it))
    l_it = −min(ρ_it·A_it, clip(ρ_it, 1−ε_low, 1+ε_high)·A_it) + β·KL_it
    KL_it = exp(ref_it − logp_it) − (ref_it − logp_it) − 1         (k3)

The aggregation (`loss_type`) is expressed as one weight per token, w_it, so that
Σ_it w_it·l_it over all micro-batches equals the aggregated loss of the whole batch,
however the batch is cut into micro-batches:

    grpo:    w_it = m_it / (Σ_t m_it · B)                  mean over sequences
    bnpo:    w_it = m_it / Σ_it m_it                       mean over the local batch's tokens
    dr_grpo: w_it = m_it / (B · max_completion_length)     Dr. GRPO (Liu et al. 2025)
    dapo:    w_it = m_it / (N_global / P)                  DAPO (Yu et al. 2025): tokens of
             the global batch; data-parallel gradient averaging over P processes restores
             the 1/N_global.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def token_weights(
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int,
    global_tokens: float | None = None,
    num_processes: int = 1,
) -> torch.Tensor:
    """(B, T) aggregation weights of the local batch (see the module docstring)."""
    mask = mask.float()
    B = mask.shape[0]
    if loss_type == "grpo":
        return mask / (mask.sum(dim=1, keepdim=True).clamp(min=1.0) * B)
    if loss_type == "bnpo":
        return mask / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return mask / (B * max_completion_length)
    if loss_type == "dapo":
        n = mask.sum().item() if global_tokens is None else global_tokens
        return mask / max(n / num_processes, 1.0 / num_processes)
    raise ValueError(f"unknown loss_type {loss_type!r}; allowed: grpo, bnpo, dr_grpo, dapo")


@dataclass
class TokenLoss:
    loss: torch.Tensor  # (N,) per-token loss l_it
    ratio: torch.Tensor  # (N,) ρ_it (detached)
    clipped: torch.Tensor  # (N,) bool: the clipped branch was the minimum
    kl: torch.Tensor | None  # (N,) k3 KL (detached), when β > 0


def per_token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
) -> TokenLoss:
    """l_it for a flat vector of tokens (shapes (N,)); old_logp None means on-policy
    (ρ = 1 with gradient, as TRL does when num_iterations = 1)."""
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    unclipped_obj = ratio * advantages
    clipped_obj = clipped_ratio * advantages
    loss = -torch.min(unclipped_obj, clipped_obj)
    kl = None
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs reference log-probs")
        delta = ref_logp - logp
        kl_t = torch.exp(delta) - delta - 1
        loss = loss + beta * kl_t
        kl = kl_t.detach()
    clipped = (clipped_obj < unclipped_obj).detach()
    return TokenLoss(loss, ratio.detach(), clipped, kl)
