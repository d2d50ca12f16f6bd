"""Implicit PRM: process rewards from a policy / reference log-ratio, trained on outcome labels.

"Free Process Rewards without Process Labels" (Yuan et al. 2024, arXiv 2412.01981).
With a trained model πθ and a reference π_ref (spec section 3):

    token reward  r_t = β·(log πθ(y_t | y_<t) − log π_ref(y_t | y_<t))        (eq. 1's summand)
    q_t           = Σ_{i≤t} r_i                                             (a Q-value)
    step reward   r^(k) = q_{end of step k} − q_{end of step k−1}          (q before step 1 is 0)
    outcome       r(y) = q_T

Training needs only response-level labels l ∈ {0, 1}:

    CE:  BCE(σ(β·Σ_t (log πθ − log π_ref)), l)
    DPO: −log σ(β·[(log πθ(y_w) − log π_ref(y_w)) − (log πθ(y_l) − log π_ref(y_l))])
         over every (correct, incorrect) pair of the same prompt.

Tokens written by the environment (completion_mask 0) get no reward and do not count.
`ImplicitPRM` wraps the two models, scores samples and updates πθ; its `update(batch)` is
the hook PRIME's online loop calls (see `prime.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from rewardkit.types import Sample
from rewardkit_math.prm import prompt_text

DEFAULT_BETA = 0.05


# -- the formulas --------------------------------------------------------------------------
def token_rewards(
    policy_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """r_t = β·(log πθ − log π_ref) on policy tokens, 0 elsewhere; (B, T) -> (B, T)."""
    if policy_logps.shape != ref_logps.shape or policy_logps.shape != mask.shape:
        raise ValueError(
            f"policy_logps {tuple(policy_logps.shape)}, ref_logps {tuple(ref_logps.shape)} "
            f"and mask {tuple(mask.shape)} must have the same shape"
        )
    return beta * (policy_logps - ref_logps) * (mask > 0)


def q_values(rewards: torch.Tensor) -> torch.Tensor:
    """q_t = Σ_{i≤t} r_i along the last dimension."""
    return torch.cumsum(rewards, dim=-1)


def step_rewards(q: Sequence[float] | torch.Tensor, step_ends: Sequence[int]) -> list[float]:
    """r^(k) = q[e_k] − q[e_{k−1}], with q before the first step equal to 0."""
    q = torch.as_tensor(q, dtype=torch.float64)
    out, previous = [], 0.0
    for k, end in enumerate(step_ends):
        if not 0 <= end < len(q) or (k and end <= step_ends[k - 1]):
            raise ValueError(f"step_ends must increase inside [0, {len(q)}), got {list(step_ends)}")
        out.append(float(q[end]) - previous)
        previous = float(q[end])
    return out


def best_of_n_score(step_rewards: Sequence[float], how: Literal["min", "sum"] = "min") -> float:
    """Scalar used to rerank N candidates: the smallest step reward, or their sum."""
    if how not in ("min", "sum"):
        raise ValueError(f"best-of-N aggregation must be 'min' or 'sum', got {how!r}")
    if not step_rewards:
        return 0.0
    return float(min(step_rewards) if how == "min" else sum(step_rewards))


def ce_loss(
    policy_seq: torch.Tensor, ref_seq: torch.Tensor, labels: torch.Tensor, beta: float
) -> torch.Tensor:
    """Mean over samples of BCE(σ(β·(log πθ(y) − log π_ref(y))), l); inputs (B,)."""
    return F.binary_cross_entropy_with_logits(beta * (policy_seq - ref_seq), labels.float())


def dpo_loss(
    policy_seq: torch.Tensor,
    ref_seq: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, int]:
    """(mean DPO loss over all (correct, incorrect) pairs of a group, number of pairs).

    With no pair in the batch the loss is 0 (with a gradient path, so a step is a no-op).
    """
    ratio = policy_seq - ref_seq
    wins, losses = [], []
    for g in torch.unique(groups):
        in_group = groups == g
        w = (in_group & (labels > 0.5)).nonzero().flatten()
        lo = (in_group & (labels <= 0.5)).nonzero().flatten()
        for i in w.tolist():
            for j in lo.tolist():
                wins.append(i)
                losses.append(j)
    if not wins:
        return ratio.sum() * 0.0, 0
    margin = beta * (ratio[wins] - ratio[losses])
    return -F.logsigmoid(margin).mean(), len(wins)


# -- log-probs of completions ---------------------------------------------------------------
def completion_logprobs(
    model: Any, rows: Sequence[tuple[Sequence[int], Sequence[int]]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logps, valid): log π(y_t | prompt, y_<t) of each completion token, (B, T) right-padded,
    and a bool mask of real tokens. Gradients flow when enabled by the caller."""
    if any(len(p) == 0 for p, _ in rows):
        raise ValueError("every row needs at least one prompt token (e.g. a BOS token)")
    lengths = [len(p) + len(c) for p, c in rows]
    width, T = max(lengths), max(len(c) for _, c in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attn = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (p, c) in enumerate(rows):
        ids[i, : lengths[i]] = torch.tensor(list(p) + list(c))
        attn[i, : lengths[i]] = 1
    logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.float()
    logps = torch.zeros(len(rows), T, device=logits.device)
    valid = torch.zeros(len(rows), T, dtype=torch.bool)
    for i, (p, c) in enumerate(rows):
        if not len(c):
            continue
        lp = torch.log_softmax(logits[i, len(p) - 1 : len(p) + len(c) - 1], dim=-1)
        target = torch.tensor(list(c), device=lp.device)
        logps[i, : len(c)] = lp.gather(1, target[:, None])[:, 0]
        valid[i, : len(c)] = True
    return logps, valid.to(logps.device)


class ImplicitPRM:
    """A trainable πθ and a frozen π_ref that share one tokenizer.

    `encode(samples)` uses each sample's prompt_ids / completion_ids when it has them
    (the policy's tokenizer must then be this tokenizer), else tokenizes the text.
    `train_step(samples, labels, groups)` takes one optimizer step of the `loss` ("ce" or
    "dpo"); `math.implicit_prm` calls it from the trainer's learned-reward hook (PRIME).
    """

    def __init__(
        self,
        model: Any,
        ref_model: Any,
        tokenizer: Any,
        beta: float = DEFAULT_BETA,
        loss: Literal["ce", "dpo"] = "ce",
        lr: float = 1e-6,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
    ):
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if loss not in ("ce", "dpo"):
            raise ValueError(f"loss must be 'ce' or 'dpo', got {loss!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.ref_model = ref_model.to(self.device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.beta, self.loss_name, self.lr = beta, loss, lr
        self.batch_size = batch_size
        self.optimizer: torch.optim.Optimizer | None = None

    def encode(self, samples: Sequence[Sample]) -> list[tuple[list[int], list[int], list[int]]]:
        """(prompt_ids, completion_ids, completion_mask) per sample."""
        rows = []
        for s in samples:
            prompt = list(s.prompt_ids) or self._tokenize(
                prompt_text(s.prompt, self.tokenizer), True
            )
            if s.completion_ids:
                completion, mask = list(s.completion_ids), list(s.completion_mask)
            else:
                completion = self._tokenize(s.completion, False)
                mask = [1] * len(completion)
            rows.append((prompt, completion, mask))
        return rows

    def _tokenize(self, text: str, is_prompt: bool) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        bos = self.tokenizer.bos_token_id
        if is_prompt and bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids  # a prompt needs a first token to predict the completion from
        return ids

    def log_ratios(self, rows: Sequence[tuple[list[int], list[int], list[int]]]) -> torch.Tensor:
        """(B, T) log πθ(y_t) − log π_ref(y_t) on policy tokens, 0 elsewhere."""
        pairs = [(p, c) for p, c, _ in rows]
        policy, valid = completion_logprobs(self.model, pairs, self.device)
        with torch.no_grad():
            ref, _ = completion_logprobs(self.ref_model, pairs, self.device)
        mask = torch.zeros_like(valid)
        for i, (_, _, m) in enumerate(rows):
            mask[i, : len(m)] = torch.tensor(m, dtype=torch.bool)
        return (policy - ref) * (mask & valid)

    @torch.no_grad()
    def token_rewards(self, samples: Sequence[Sample]) -> list[list[float]]:
        """r_t per completion token of each sample (β·log-ratio, 0 on environment tokens)."""
        self.model.eval()
        rows = self.encode(samples)
        out: list[list[float]] = []
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            r = self.beta * self.log_ratios(chunk)
            out += [r[j, : len(c)].tolist() for j, (_, c, _) in enumerate(chunk)]
        return out

    def loss(
        self,
        rows: Sequence[tuple[list[int], list[int], list[int]]],
        labels: torch.Tensor,
        groups: torch.Tensor,
    ) -> torch.Tensor:
        """The training loss on rows with response-level labels (CE or DPO)."""
        seq = self.log_ratios(rows).sum(dim=1)
        zeros = torch.zeros_like(seq)  # the log-ratio already subtracts the reference
        labels, groups = labels.to(seq.device), groups.to(seq.device)
        if self.loss_name == "ce":
            return ce_loss(seq, zeros, labels, self.beta)
        return dpo_loss(seq, zeros, labels, groups, self.beta)[0]

    def train_step(
        self,
        samples: Sequence[Sample],
        labels: Sequence[float],
        groups: Sequence[int] | None = None,
    ) -> float:
        """One optimizer step on all `samples` (gradients accumulated over micro-batches)."""
        if len(labels) != len(samples):
            raise ValueError(f"{len(labels)} labels for {len(samples)} samples")
        optimizer = self.ensure_optimizer()
        self.model.train()
        rows = self.encode(samples)
        y = torch.tensor(list(labels), dtype=torch.float)
        g = torch.tensor(list(groups) if groups is not None else [s.group for s in samples])
        optimizer.zero_grad()
        if self.loss_name == "dpo":  # pairs cross micro-batches: one pass over the batch
            loss = self.loss(rows, y, g)
            loss.backward()
            total = loss.detach().item()
        else:
            total = 0.0
            for i in range(0, len(rows), self.batch_size):
                part = slice(i, i + self.batch_size)
                loss = self.loss(rows[part], y[part], g[part]) * (len(rows[part]) / len(rows))
                loss.backward()
                total += loss.detach().item()
        optimizer.step()
        self.model.eval()
        return total

    def ensure_optimizer(self) -> torch.optim.Optimizer:
        """The AdamW optimizer of πθ, made on first use."""
        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr)
        return self.optimizer
