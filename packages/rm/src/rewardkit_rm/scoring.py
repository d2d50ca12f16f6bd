"""Forward passes of a reward model over many (prompt, response) items, batched.

`head_outputs` returns the raw head outputs (N, out_dim) and GPM gates; `pair_outputs`
runs a collated pair batch in one forward (chosen and rejected together) and splits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rewardkit_rm.data import Prompt, encode, pad_batch


def pair_outputs(rm, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(chosen outputs, rejected outputs, batch fields + GPM gate) of a collated pair batch."""
    device = next(rm.parameters()).device
    result = rm(
        batch["input_ids"].to(device),
        batch["attention_mask"].to(device),
        batch["prompt_last"].to(device),
    )
    chosen, rejected = result["out"].chunk(2)
    fields = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    if result["gate"] is not None:
        fields["gate"] = result["gate"].chunk(2)[0]  # both halves share the prompt
    return chosen, rejected, fields


@torch.no_grad()
def progress_bar(enabled: bool):
    """A rich progress bar (description, bar, done/total, elapsed, remaining); `enabled`
    False makes it silent."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def head_outputs(
    rm,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    responses: Sequence[str],
    max_length: int,
    batch_size: int = 16,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(outputs (N, out_dim), gates (N, k) or None, truncated count), on the CPU.

    Items are sorted by length so that each batch pads little, then put back in order.
    `progress` shows a bar over the sequences (for long evaluations)."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    device = next(rm.parameters()).device
    encoded = [encode(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    truncated = sum(e[2] for e in encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    outs: list[torch.Tensor | None] = [None] * len(encoded)
    gates: list[torch.Tensor | None] = [None] * len(encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with progress_bar(progress) as bar:
        task = bar.add_task("scoring", total=len(order))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_batch([encoded[i][0] for i in idx], pad)
            prompt_last = torch.tensor([encoded[i][1] for i in idx])
            result = rm(ids.to(device), mask.to(device), prompt_last.to(device))
            for j, i in enumerate(idx):
                outs[i] = result["out"][j].float().cpu()
                if result["gate"] is not None:
                    gates[i] = result["gate"][j].float().cpu()
            bar.advance(task, len(idx))
    if not encoded:
        return torch.zeros(0, rm.spec.out_dim), None, 0
    stacked_gates = torch.stack(gates) if gates[0] is not None else None
    return torch.stack(outs), stacked_gates, truncated
