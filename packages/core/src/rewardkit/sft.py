"""Supervised warm start: teach a policy the answer format before GRPO.

Cross-entropy on the completion tokens only (prompt tokens are not trained), shuffled
mini-batches, AdamW. Used by the demo; useful before RL on any task whose rows carry a
reference completion.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def supervised_warm_start(
    model: torch.nn.Module,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Train on (prompt, completion) pairs for `steps` mini-batches; returns the losses.

    The completion is followed by the tokenizer's end-of-sequence token, so the model
    learns to stop.
    """
    if not pairs:
        raise ValueError("supervised_warm_start needs at least one (prompt, completion) pair")
    from rich.progress import Progress

    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    encoded = []
    for prompt, completion in pairs:
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos]
        encoded.append((p, c))
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(steps // 10, 1)) * max(0.0, 1 - s / steps)
    )
    model.train()
    losses = []
    with Progress(disable=not progress) as bar:
        job = bar.add_task("warm start", total=steps)
        for _ in range(steps):
            batch = rng.sample(encoded, min(batch_size, len(encoded)))
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            attn = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (p, c) in enumerate(batch):
                n = len(p) + len(c)
                ids[i, :n] = torch.tensor(p + c)
                labels[i, len(p) : n] = torch.tensor(c)
                attn[i, :n] = 1
            out = model(
                input_ids=ids.to(device), attention_mask=attn.to(device), labels=labels.to(device)
            )
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            bar.update(job, advance=1)
    model.eval()
    return losses
