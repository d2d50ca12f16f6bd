"""Shared-prompt micro-batches: each distinct prompt runs through the model once.

GRPO trains on G completions of the same prompt. The padded and packed layouts of
rewardkit.data feed the prompt G times, forward and backward; with chat prompts (a system
message, the template's markers) the prompt is often longer than the completion. Here the
distinct prompts of a micro-batch run once, left-padded, keeping their key/value cache; the
cache rows are gathered for each completion (`Cache.batch_select_indices`, an index, so the
gradient of every completion flows back into the one prompt pass) and the completions run
on top of it. The log-probabilities and gradients are those of the padded layout (tested to
float tolerance); the model sees U·Lp + N·(Lc − 1) tokens instead of N·(Lp + Lc − 1), for U
prompts of padded length Lp and N completions of padded length Lc.

Completion token 0 is predicted by the logits at the last prompt position (every prompt
row ends at the same column: left padding), token t ≥ 1 by the completion pass at column
t − 1. The completion's last token is only a target and is never fed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from rewardkit.data import target_logprobs


@dataclass
class SharedPromptBatch:
    prompt_ids: torch.LongTensor  # (U, Lp) distinct prompts, left-padded
    prompt_mask: torch.LongTensor  # (U, Lp)
    owner: torch.LongTensor  # (R,) the prompt row of each completion row
    completion_ids: torch.LongTensor  # (R, Lc - 1) completion inputs, right-padded
    completion_mask: torch.LongTensor  # (R, Lc - 1)
    target_row: torch.LongTensor  # (N,) completion row of each target
    target_col: torch.LongTensor  # (N,) its position t in the completion
    target_ids: torch.LongTensor  # (N,) the completion token ids
    rows: torch.LongTensor  # (N,) sample index (TrainSequence.index)
    cols: torch.LongTensor  # (N,) = target_col
    num_tokens: int  # tokens the model runs on (prompts once each, then completions)

    def to(self, device: torch.device | str, non_blocking: bool = True) -> SharedPromptBatch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.to(device, non_blocking=non_blocking)
            moved[f.name] = value
        return SharedPromptBatch(**moved)


def _cost(prompt_len: int, completion_lens: list[int]) -> int:
    return prompt_len + sum(max(n - 1, 0) for n in completion_lens)


def make_shared_prompt_batches(seqs, token_budget: int, pad_id: int = 0) -> list[SharedPromptBatch]:
    """Group `seqs` (rewardkit.data.TrainSequence, validated by the caller) by identical
    prompt ids and pack whole groups into micro-batches of about `token_budget` tokens
    (prompts counted once; a lone group may exceed it). Empty completions are left out."""
    groups: dict[tuple[int, ...], list] = {}
    for s in seqs:
        if len(s.completion_ids) > 0:
            groups.setdefault(tuple(s.prompt_ids), []).append(s)
    ordered = sorted(
        groups.values(),
        key=lambda g: -_cost(len(g[0].prompt_ids), [len(s.completion_ids) for s in g]),
    )
    bins: list[list[list]] = []
    used: list[int] = []
    for g in ordered:  # longest first into the first bin with room (first-fit decreasing)
        cost = _cost(len(g[0].prompt_ids), [len(s.completion_ids) for s in g])
        for b, u in enumerate(used):
            if u + cost <= token_budget:
                bins[b].append(g)
                used[b] += cost
                break
        else:
            bins.append([g])
            used.append(cost)
    return [_build(b, pad_id) for b in bins]


def _build(groups: list[list], pad_id: int) -> SharedPromptBatch:
    lp = max(len(g[0].prompt_ids) for g in groups)
    members = [s for g in groups for s in g]
    lc = max(max(len(s.completion_ids) - 1 for s in members), 0)
    prompt_ids = torch.full((len(groups), lp), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(groups), lp), dtype=torch.long)
    completion_ids = torch.full((len(members), lc), pad_id, dtype=torch.long)
    completion_mask = torch.zeros((len(members), lc), dtype=torch.long)
    owner, t_row, t_col, t_ids, rows = [], [], [], [], []
    r = 0
    for u, g in enumerate(groups):
        p = g[0].prompt_ids
        prompt_ids[u, lp - len(p) :] = torch.as_tensor(p, dtype=torch.long)
        prompt_mask[u, lp - len(p) :] = 1
        for s in g:
            c = s.completion_ids
            completion_ids[r, : len(c) - 1] = torch.as_tensor(c[:-1], dtype=torch.long)
            completion_mask[r, : len(c) - 1] = 1
            owner.append(u)
            t_row += [r] * len(c)
            t_col += range(len(c))
            t_ids += c
            rows += [s.index] * len(c)
            r += 1
    as_long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return SharedPromptBatch(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        owner=as_long(owner),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        target_row=as_long(t_row),
        target_col=as_long(t_col),
        target_ids=as_long(t_ids),
        rows=as_long(rows),
        cols=as_long(t_col),
        num_tokens=int(prompt_mask.sum() + completion_mask.sum()),
    )


def shared_prompt_logprobs(
    model: torch.nn.Module,
    mb: SharedPromptBatch,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probabilities (N,) of the completion tokens of `mb` (and entropies),
    as `rewardkit.data.completion_logprobs` gives them for the same sequences."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    device = next(model.parameters()).device
    if mb.prompt_ids.device != device:
        mb = mb.to(device)
    prompt_pos = (mb.prompt_mask.cumsum(1) - 1).clamp(min=0)
    out = model(
        input_ids=mb.prompt_ids,
        attention_mask=mb.prompt_mask,
        position_ids=prompt_pos,
        use_cache=True,
        logits_to_keep=1,
    )
    first = out.logits[:, -1][mb.owner]  # (R, V): predicts completion token 0
    logits = first.unsqueeze(1)
    if mb.completion_ids.shape[1] > 0:
        # transformers 5 names the cache `cache` (argument and output), 4.x `past_key_values`
        name = "cache" if "cache" in out.keys() else "past_key_values"
        cache = out[name]
        cache.batch_select_indices(mb.owner)  # prompt rows -> completion rows (differentiable)
        start = mb.prompt_mask.sum(1)[mb.owner].unsqueeze(1)
        positions = start + torch.arange(mb.completion_ids.shape[1], device=device)
        rest = model(
            input_ids=mb.completion_ids,
            attention_mask=torch.cat([mb.prompt_mask[mb.owner], mb.completion_mask], dim=1),
            position_ids=positions,
            use_cache=True,
            **{name: cache},
        ).logits
        logits = torch.cat([logits, rest], dim=1)  # (R, Lc, V): column t predicts token t
    return target_logprobs(
        logits[mb.target_row, mb.target_col], mb.target_ids, temperature, with_entropy
    )
