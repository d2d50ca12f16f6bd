"""Supervised alignment over a curriculum stream (GREAM, arXiv 2510.20815, §3.2).

Cross-entropy on the completion tokens only, over the stream *in order* (so that the
curriculum's growing share of reasoning samples is what the model sees late in the epoch),
cut into consecutive mini-batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def encode_pairs(tokenizer, pairs: Sequence[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids + eos) for each {"prompt", "completion"} pair."""
    eos = tokenizer.eos_token_id
    prompts = tokenizer([p["prompt"] for p in pairs])["input_ids"]
    completions = tokenizer([p["completion"] for p in pairs], add_special_tokens=False)
    return [
        (list(p), list(c) + [eos]) for p, c in zip(prompts, completions["input_ids"], strict=True)
    ]


def completion_loss(model, batch: Sequence[tuple[list[int], list[int]]], pad: int) -> torch.Tensor:
    """Mean cross-entropy of the completion tokens of a right-padded batch."""
    device = next(model.parameters()).device
    width = max(len(p) + len(c) for p, c in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (p, c) in enumerate(batch):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        labels[i, len(p) : len(p) + len(c)] = torch.tensor(c)
        attention[i, : len(p) + len(c)] = 1
    out = model(
        input_ids=ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)
    )
    return out.loss


def supervised_alignment(
    model,
    tokenizer,
    stream: Sequence[dict[str, Any]],
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    max_length: int = 512,
) -> list[float]:
    """One pass over `stream` in consecutive mini-batches; returns the losses."""
    if not stream:
        raise ValueError("supervised_alignment: the stream is empty")
    if batch_size < 1:
        raise ValueError(f"supervised_alignment: batch_size must be >= 1, got {batch_size}")
    encoded = encode_pairs(tokenizer, stream)
    too_long = [i for i, (p, c) in enumerate(encoded) if len(p) + len(c) > max_length]
    if too_long:
        raise ValueError(
            f"supervised_alignment: {len(too_long)} pairs exceed {max_length} tokens "
            f"(first: stream[{too_long[0]}], task {stream[too_long[0]].get('task')!r})"
        )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    losses = []
    for start in range(0, len(encoded), batch_size):
        loss = completion_loss(model, encoded[start : start + batch_size], pad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.detach().item())
    model.eval()
    return losses
