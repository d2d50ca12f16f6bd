"""Supervised alignment over a curriculum stream (GREAM, arXiv 2510.20815, §3.2), on core's
SFT loop (`rewardkit.sft`).

Cross-entropy on the completion tokens, over the stream *in order* (so that the
curriculum's growing share of reasoning samples is what the model sees late in the epoch),
cut into consecutive mini-batches. A pair with `label_prompt` also trains on those of its
prompt tokens that are in `prompt_label_ids` (the ID tokens): with a history of IDs as the
prompt, that is the next-item loss at every history position, as in SASRec.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from rewardkit.sft import IGNORE, completion_loss, train_supervised  # noqa: F401 (re-export)

Encoded = tuple[list[int], list[int], list[int]]  # prompt ids, completion ids, prompt labels


def encode_pairs(
    tokenizer, pairs: Sequence[dict[str, Any]], prompt_label_ids: Collection[int] = ()
) -> list[Encoded]:
    """(prompt ids, completion ids + eos, prompt labels) for each {"prompt", "completion"}
    pair; a prompt label is the token itself where the pair has `label_prompt` and the
    token is in `prompt_label_ids`, else IGNORE."""
    eos = tokenizer.eos_token_id
    labelled = frozenset(prompt_label_ids)
    prompts = tokenizer([p["prompt"] for p in pairs])["input_ids"]
    completions = tokenizer([p["completion"] for p in pairs], add_special_tokens=False)
    out = []
    for pair, p, c in zip(pairs, prompts, completions["input_ids"], strict=True):
        own = pair.get("label_prompt", False)
        labels = [t if own and t in labelled else IGNORE for t in p]
        out.append((list(p), list(c) + [eos], labels))
    return out


def supervised_alignment(
    model,
    tokenizer,
    stream: Sequence[dict[str, Any]],
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    max_length: int = 512,
    prompt_label_ids: Collection[int] = (),
    decay: bool = False,
    log_every: int = 0,
    bucket: int = 1,
) -> list[float]:
    """One pass over `stream` in consecutive mini-batches (AdamW; with `decay` the learning
    rate falls linearly to 0 over the pass); returns the losses. `log_every` > 0 prints
    the running loss every that many mini-batches. `bucket` > 1 cuts the stream into
    consecutive chunks of `bucket` mini-batches and sorts each chunk by length before
    batching (less padding; the curriculum order holds from chunk to chunk)."""
    if not stream:
        raise ValueError("supervised_alignment: the stream is empty")
    if batch_size < 1:
        raise ValueError(f"supervised_alignment: batch_size must be >= 1, got {batch_size}")
    encoded = encode_pairs(tokenizer, stream, prompt_label_ids)
    too_long = [i for i, (p, c, _) in enumerate(encoded) if len(p) + len(c) > max_length]
    if too_long:
        raise ValueError(
            f"supervised_alignment: {len(too_long)} pairs exceed {max_length} tokens "
            f"(first: stream[{too_long[0]}], task {stream[too_long[0]].get('task')!r})"
        )
    if bucket < 1:
        raise ValueError(f"supervised_alignment: bucket must be >= 1, got {bucket}")
    chunk = batch_size * bucket
    encoded = [
        pair
        for start in range(0, len(encoded), chunk)
        for pair in sorted(encoded[start : start + chunk], key=lambda e: len(e[0]) + len(e[1]))
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    steps = (len(encoded) + batch_size - 1) // batch_size
    batches = (encoded[start : start + batch_size] for start in range(0, len(encoded), batch_size))
    losses: list[float] = []

    def log(step: int, loss: float) -> None:
        losses.append(loss)
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            print(
                f"[recsys] alignment {step + 1}/{steps}: loss {sum(recent) / len(recent):.3f}",
                flush=True,
            )

    return train_supervised(
        model,
        batches,
        steps,
        pad,
        learning_rate,
        lr_factor=(lambda step: 1 - step / steps) if decay else None,
        on_loss=log,
    )
