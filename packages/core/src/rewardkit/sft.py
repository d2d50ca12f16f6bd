"""Supervised fine-tuning on (prompt, completion) pairs: the one SFT loop of rewardkit.

Cross-entropy on the completion tokens only (prompt tokens are not trained unless a pair
labels some of them), right-padded mini-batches, AdamW, gradient clipping at 1.
`train_supervised` runs any sequence of mini-batches with an optional learning-rate factor
per step; `supervised_warm_start` (the demo's warm start) draws shuffled mini-batches with
a short warm-up and a linear decay; recsys' curriculum alignment runs the stream in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

import torch

IGNORE = -100  # label of a token that is not trained on

# prompt ids, completion ids (end-of-sequence included), labels of the prompt tokens
Encoded = tuple[list[int], list[int], list[int]]


def encode(tokenizer, prompt: str, completion: str) -> Encoded:
    """(prompt ids, completion ids + eos, no prompt labels) of one pair."""
    p = list(tokenizer(prompt)["input_ids"])
    c = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    return p, c + [tokenizer.eos_token_id], [IGNORE] * len(p)


def completion_loss(model, batch: Sequence[Encoded], pad: int) -> torch.Tensor:
    """Mean cross-entropy over the labelled tokens (completion tokens and labelled prompt
    tokens; the first token has nothing before it) of a right-padded batch."""
    device = next(model.parameters()).device
    width = max(len(p) + len(c) for p, c, _ in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (p, c, prompt_labels) in enumerate(batch):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        labels[i, : len(p) + len(c)] = torch.tensor(prompt_labels + c)
        attention[i, : len(p) + len(c)] = 1
    labels[:, 0] = IGNORE  # the model shifts labels by one: position 0 is never predicted
    out = model(
        input_ids=ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)
    )
    return out.loss


def train_supervised(
    model: torch.nn.Module,
    batches: Iterable[Sequence[Encoded]],
    steps: int,
    pad: int,
    learning_rate: float,
    lr_factor: Callable[[int], float] | None = None,
    on_loss: Callable[[int, float], None] | None = None,
    progress: str | None = None,
) -> list[float]:
    """One AdamW step per mini-batch of `batches` (`steps` of them), the learning rate at
    step s being learning_rate · lr_factor(s); returns the losses. `progress`: a label for
    a progress bar; `on_loss(step, loss)` is called after every step."""
    from rich.progress import Progress

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    losses: list[float] = []
    with Progress(disable=progress is None) as bar:
        job = bar.add_task(progress or "", total=steps)
        for step, batch in zip(range(steps), batches, strict=False):
            if lr_factor is not None:
                optimizer.param_groups[0]["lr"] = learning_rate * lr_factor(step)
            loss = completion_loss(model, batch, pad)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss.detach().item())
            if on_loss is not None:
                on_loss(step, losses[-1])
            bar.update(job, advance=1)
    model.eval()
    return losses


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
    """Train on (prompt, completion) pairs for `steps` shuffled mini-batches (a warm-up over
    the first tenth, then a linear decay to 0); returns the losses. The completion is
    followed by the tokenizer's end-of-sequence token, so the model learns to stop."""
    if not pairs:
        raise ValueError("supervised_warm_start needs at least one (prompt, completion) pair")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode(tokenizer, p, c) for p, c in pairs]
    rng = random.Random(seed)
    batches = (rng.sample(encoded, min(batch_size, len(encoded))) for _ in range(steps))
    warmup = max(steps // 10, 1)
    return train_supervised(
        model,
        batches,
        steps,
        pad,
        learning_rate,
        lr_factor=lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps),
        progress="warm start" if progress else None,
    )
