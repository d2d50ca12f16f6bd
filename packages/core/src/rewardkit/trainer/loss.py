"""Policy losses (registry "rewardkit.losses"): the clipped GRPO objective per token and
how it is aggregated over the batch (`loss_type`).

Shao et al. 2024 (DeepSeekMath, GRPO) with the variants as TRL defines them:

    ρ_it = exp(logπθ(y_it) − logπ_old(y_it))
    l_it = −min(ρ_it·A_it, clip(ρ_it, 1−ε_low, 1+ε_high)·A_it) + β·KL_it
    KL_it = exp(ref_it − logp_it) − (ref_it − logp_it) − 1         (k3)

The aggregation is one weight per token, w_it, so that Σ_it w_it·l_it over all
micro-batches equals the aggregated loss of the whole batch, however the batch is cut into
micro-batches:

    grpo:    w_it = m_it / (Σ_t m_it · B)                  mean over sequences
    bnpo:    w_it = m_it / Σ_it m_it                       mean over the local batch's tokens
    dr_grpo: w_it = m_it / (B · max_completion_length)     Dr. GRPO (Liu et al. 2025)
    dapo:    w_it = m_it / (N_global / P)                  DAPO (Yu et al. 2025): tokens of
             the global batch; data-parallel gradient averaging over P processes restores
             the 1/N_global.
    gspo:    GSPO (Zheng et al. 2025, "Group Sequence Policy Optimization", eq. 5-7): the
             importance ratio of a sequence, s_i = exp(mean_t m_it·(logπθ − logπ_old)),
             the length-normalised sequence likelihood ratio, replaces ρ_it for every token
             of sequence i (gradient through every token's log-prob); grpo's weights. TRL's
             `importance_sampling_level="sequence"` with loss_type "grpo".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rewardkit.registry import LOSSES


@dataclass
class TokenLoss:
    loss: torch.Tensor  # (N,) per-token loss l_it
    clipped: torch.Tensor  # (N,) bool: the clipped branch was the minimum
    kl: torch.Tensor | None  # (N,) k3 KL (detached), when β > 0


def clipped_loss(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    beta: float = 0.0,
    logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
) -> TokenLoss:
    """l = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) + β·KL(logp, ref) per token."""
    unclipped_obj = ratio * advantages
    clipped_obj = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * advantages
    loss = -torch.min(unclipped_obj, clipped_obj)
    kl = None
    if beta != 0.0:
        if ref_logp is None or logp is None:
            raise ValueError("beta > 0 needs reference log-probs")
        delta = ref_logp - logp
        kl_t = torch.exp(delta) - delta - 1
        loss = loss + beta * kl_t
        kl = kl_t.detach()
    return TokenLoss(loss, (clipped_obj < unclipped_obj).detach(), kl)


def per_token_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
) -> TokenLoss:
    """l_it with the token ratio ρ_it, for a flat vector of tokens (shapes (N,)); old_logp
    None means on-policy (ρ = 1 with gradient, as TRL does when num_iterations = 1)."""
    old = logp.detach() if old_logp is None else old_logp
    ratio = torch.exp(logp - old)
    return clipped_loss(ratio, advantages, epsilon_low, epsilon_high, beta, logp, ref_logp)


class PolicyLoss:
    """A registered loss: `weights` (the aggregation) and `token_loss` (l_it of the tokens
    of a micro-batch, given as flat (N,) vectors with `rows`, each token's sequence)."""

    def weights(
        self,
        mask: torch.Tensor,
        max_completion_length: int,
        global_tokens: float | None = None,
        num_processes: int = 1,
    ) -> torch.Tensor:
        raise NotImplementedError

    def token_loss(
        self,
        logp: torch.Tensor,
        old_logp: torch.Tensor | None,
        advantages: torch.Tensor,
        mask: torch.Tensor,
        rows: torch.Tensor,
        epsilon_low: float,
        epsilon_high: float,
        beta: float = 0.0,
        ref_logp: torch.Tensor | None = None,
    ) -> TokenLoss:
        return per_token_loss(logp, old_logp, advantages, epsilon_low, epsilon_high, beta, ref_logp)


@LOSSES.register("grpo")
class GRPOLoss(PolicyLoss):
    """Mean over sequences of each sequence's mean token loss."""

    def weights(self, mask, max_completion_length, global_tokens=None, num_processes=1):
        mask = mask.float()
        return mask / (mask.sum(dim=1, keepdim=True).clamp(min=1.0) * mask.shape[0])


@LOSSES.register("bnpo")
class BNPOLoss(PolicyLoss):
    """Mean over the local batch's policy tokens."""

    def weights(self, mask, max_completion_length, global_tokens=None, num_processes=1):
        mask = mask.float()
        return mask / mask.sum().clamp(min=1.0)


@LOSSES.register("dr_grpo")
class DrGRPOLoss(PolicyLoss):
    """Sum over tokens / (B · max_completion_length) (Dr. GRPO)."""

    def weights(self, mask, max_completion_length, global_tokens=None, num_processes=1):
        return mask.float() / (mask.shape[0] * max_completion_length)


@LOSSES.register("dapo")
class DAPOLoss(PolicyLoss):
    """Sum over tokens / policy tokens of the global batch (DAPO)."""

    def weights(self, mask, max_completion_length, global_tokens=None, num_processes=1):
        mask = mask.float()
        n = mask.sum().item() if global_tokens is None else global_tokens
        return mask / max(n / num_processes, 1.0 / num_processes)


@LOSSES.register("gspo")
class GSPOLoss(GRPOLoss):
    """GSPO: the sequence-level ratio s_i for every token of sequence i; grpo's weights."""

    def token_loss(
        self,
        logp,
        old_logp,
        advantages,
        mask,
        rows,
        epsilon_low,
        epsilon_high,
        beta=0.0,
        ref_logp=None,
    ):
        old = logp.detach() if old_logp is None else old_logp
        m = mask.to(logp.dtype)
        n_rows = int(rows.max()) + 1 if rows.numel() else 0
        log_ratio_sum = torch.zeros(n_rows, dtype=logp.dtype, device=logp.device)
        log_ratio_sum = log_ratio_sum.index_add(0, rows, (logp - old) * m)
        tokens = torch.zeros(n_rows, dtype=logp.dtype, device=logp.device).index_add(0, rows, m)
        ratio = torch.exp(log_ratio_sum / tokens.clamp(min=1.0))[rows]
        return clipped_loss(ratio, advantages, epsilon_low, epsilon_high, beta, logp, ref_logp)


def token_weights(
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int,
    global_tokens: float | None = None,
    num_processes: int = 1,
) -> torch.Tensor:
    """(B, T) aggregation weights of the local batch for the registered `loss_type`."""
    return LOSSES.get(loss_type)().weights(
        mask, max_completion_length, global_tokens, num_processes
    )
