"""Data collators: left-padded prompts for generation, token-budget micro-batches for training.

CUDA-aware: for a CUDA device, lengths are padded to a
multiple of 8 (tensor-core friendly shapes) and tensors come back in pinned CPU memory, so that
the caller's `.to(device, non_blocking=True)` overlaps the copy with compute; for a CPU device
neither happens. Tensors are always built on the CPU; `MicroBatch.to` moves one.

Training micro-batches are cut by a token budget, not a sample count, in one of two layouts:

- ``padded``: one row per sequence, right-padded, with an attention mask. The budget counts
  rows x padded length (what the model actually computes). Sequences are sorted by length and
  cut into contiguous runs, so each micro-batch holds sequences of similar length, and the
  runs are balanced (the largest micro-batch is made as small as the minimum count allows).
- ``packed`` (padding-free): all sequences of a micro-batch back to back in one row,
  ``position_ids`` restarting at 0 at each sequence, no attention mask. The budget counts the
  row length. Sequences go longest first into the least-filled of ceil(total / budget) bins
  (LPT greedy), a new bin opening only when one would overflow.

Packing relies on transformers (checked in 5.24, `masking_utils._preprocess_mask_arguments` and
`find_packed_sequence_indices`): when ``attention_mask`` is None *and there is no KV cache*,
restarting ``position_ids`` are split into sequences and the causal mask is made
block-diagonal (sdpa, eager, flex); flash-attention instead derives ``cu_seqlens`` from the
position ids (`modeling_flash_attention_utils._is_packed_sequence`) and calls the varlen kernel.
The model's ``use_cache`` defaults to ``config.use_cache`` (True for most models), and with a
cache the packed detection is skipped, silently letting sequences attend to each other, so
`completion_logprobs` always passes ``use_cache=False``.

The input of a sequence is ``prompt_ids + completion_ids[:-1]``: the logits at position
``len(prompt) - 1 + t`` predict completion token ``t``, and the last completion token is only a
target, so it is never fed to the model.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, fields

import torch
from torch import Tensor

MODES = ("padded", "packed", "shared_prompt")  # shared_prompt: rewardkit.shared_prompt


@dataclass
class TrainSequence:
    """One sample for training; `index` is its row in the (B, T) batch of advantages."""

    prompt_ids: list[int]
    completion_ids: list[int]
    index: int


@dataclass
class MicroBatch:
    input_ids: torch.LongTensor  # (R, L)
    attention_mask: torch.LongTensor | None  # (R, L) padded mode, None in packed mode
    position_ids: torch.LongTensor  # (R, L)
    target_positions: (
        torch.LongTensor
    )  # (N,) flat index into the (R*L) logits predicting each target
    target_ids: torch.LongTensor  # (N,) the completion token ids
    rows: torch.LongTensor  # (N,) sample index (TrainSequence.index)
    cols: torch.LongTensor  # (N,) completion token position t within that sample
    num_tokens: int  # real (non-pad) tokens in this micro-batch

    def to(self, device: torch.device | str, non_blocking: bool = True) -> MicroBatch:
        """A copy with every tensor on `device` (non-blocking: pinned memory makes it async)."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.to(device, non_blocking=non_blocking)
            moved[f.name] = value
        return MicroBatch(**moved)


def _cuda_layout(device: torch.device | str | int) -> tuple[int, bool]:
    """(pad-to multiple, pin memory) for tensors bound for `device`.

    CUDA: (8, True) when a CUDA runtime is present; without one nothing can be pinned, so
    (8, False) keeps the CUDA shapes (and lets them be tested on a CPU-only machine).
    Any other device: (1, False).
    """
    if isinstance(device, int):  # a bare ordinal means a CUDA device, as in torch
        device = torch.device("cuda", device)
    if torch.device(device).type == "cuda":
        return 8, torch.cuda.is_available()
    return 1, False


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _finish(tensor: Tensor, pin: bool) -> Tensor:
    return tensor.pin_memory() if pin else tensor


def left_pad(
    prompt_ids: list[list[int]], pad_id: int, device: torch.device | str = "cpu"
) -> dict[str, Tensor]:
    """Left-pad prompts for generation: {"input_ids", "attention_mask"}, both (B, L) int64 on the
    CPU (pinned, L a multiple of 8, for a CUDA device). Move them with non_blocking=True."""
    if not prompt_ids:
        raise ValueError("left_pad got no prompts")
    for i, ids in enumerate(prompt_ids):
        if len(ids) == 0:
            raise ValueError(f"prompt {i} is empty: generation needs at least one prompt token")
    multiple, pin = _cuda_layout(device)
    width = _round_up(max(len(ids) for ids in prompt_ids), multiple)
    input_ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        input_ids[i, width - len(ids) :] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[i, width - len(ids) :] = 1
    return {"input_ids": _finish(input_ids, pin), "attention_mask": _finish(attention_mask, pin)}


# ---------------------------------------------------------------- binning by token budget


def _padded_bins(lengths: list[int], budget: int, multiple: int) -> list[list[int]]:
    """Contiguous runs of the length-sorted sequences, rows x padded length <= budget each
    (a lone sequence may exceed it). Among cuts with the fewest runs, take the one whose
    largest run is smallest: binary search on a cap below the budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def cut(cap: int) -> list[list[int]]:
        bins: list[list[int]] = []
        for i in order:  # longest first, so a bin's first sequence sets its padded length
            if bins and (len(bins[-1]) + 1) * _round_up(lengths[bins[-1][0]], multiple) <= cap:
                bins[-1].append(i)
            else:
                bins.append([i])
        return bins

    fewest = len(cut(budget))
    low, high = 1, budget  # the number of runs never grows as the cap grows
    while low < high:
        mid = (low + high) // 2
        if len(cut(mid)) <= fewest:
            high = mid
        else:
            low = mid + 1
    return cut(low)


def _packed_bins(lengths: list[int], budget: int, multiple: int) -> list[list[int]]:
    """Longest first into the least-filled of ceil(total / budget) bins; a bin holds at most
    `budget` tokens after rounding up to `multiple`, unless one sequence alone does not fit."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    num_bins = max(1, -(-sum(lengths) // budget))
    bins: list[list[int]] = [[] for _ in range(num_bins)]
    heap = [(0, b) for b in range(num_bins)]  # (tokens, bin), least-filled on top
    for i in order:
        tokens, b = heapq.heappop(heap)
        # if the least-filled bin cannot take it, no other can: open a new one
        if bins[b] and _round_up(tokens + lengths[i], multiple) > budget:
            heapq.heappush(heap, (tokens, b))
            bins.append([])
            tokens, b = 0, len(bins) - 1
        bins[b].append(i)
        heapq.heappush(heap, (tokens + lengths[i], b))
    return [b for b in bins if b]


# ---------------------------------------------------------------- building micro-batches


def _validate(seqs: list[TrainSequence], token_budget: int, mode: str) -> None:
    if not seqs:
        raise ValueError("make_micro_batches got no sequences")
    if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget <= 0:
        raise ValueError(f"token_budget must be a positive int, got {token_budget!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    seen: dict[int, int] = {}
    for k, seq in enumerate(seqs):
        if not isinstance(seq, TrainSequence):
            raise TypeError(f"seqs[{k}] is a {type(seq).__name__}, expected TrainSequence")
        if not isinstance(seq.index, int) or seq.index < 0:
            raise ValueError(f"seqs[{k}].index must be a non-negative int, got {seq.index!r}")
        if seq.index in seen:
            raise ValueError(f"seqs[{seen[seq.index]}] and seqs[{k}] share index {seq.index}")
        seen[seq.index] = k
        if len(seq.prompt_ids) == 0 and len(seq.completion_ids) > 0:
            raise ValueError(
                f"seqs[{k}] (index {seq.index}) has an empty prompt: the first completion token "
                "needs at least one token before it to be predicted"
            )


def make_micro_batches(
    seqs: list[TrainSequence],
    token_budget: int,
    mode: str = "padded",
    pad_id: int = 0,
    device: torch.device | str = "cpu",
) -> list[MicroBatch]:
    """Cut `seqs` into micro-batches of at most `token_budget` tokens each (padded: rows x
    padded length; packed: row length), unless one sequence alone is longer. Together they
    cover every completion token exactly once. Sequences with an empty completion have no
    token to score and are left out. Tensors are on the CPU, pinned for a CUDA `device`."""
    _validate(seqs, token_budget, mode)
    if mode == "shared_prompt":
        from rewardkit.shared_prompt import make_shared_prompt_batches

        return make_shared_prompt_batches(seqs, token_budget, pad_id)
    multiple, pin = _cuda_layout(device)
    seqs = [s for s in seqs if len(s.completion_ids) > 0]
    lengths = [len(s.prompt_ids) + len(s.completion_ids) - 1 for s in seqs]
    make_bins = _padded_bins if mode == "padded" else _packed_bins
    bins = make_bins(lengths, token_budget, multiple) if seqs else []
    build = _build_padded if mode == "padded" else _build_packed
    return [build([seqs[i] for i in b], pad_id, multiple, pin) for b in bins]


def _targets(seq: TrainSequence, start: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """(target_positions, target_ids, rows, cols) of `seq` whose input begins at flat `start`:
    the logits at input position len(prompt) - 1 + t predict completion token t."""
    first = start + len(seq.prompt_ids) - 1
    num = len(seq.completion_ids)
    return (
        list(range(first, first + num)),
        list(seq.completion_ids),
        [seq.index] * num,
        list(range(num)),
    )


def _assemble(
    input_ids: Tensor,
    attention_mask: Tensor | None,
    position_ids: Tensor,
    targets: list[tuple[list[int], list[int], list[int], list[int]]],
    num_tokens: int,
    pin: bool,
) -> MicroBatch:
    columns = [sum((t[j] for t in targets), []) for j in range(4)]
    positions, ids, rows, cols = (torch.tensor(c, dtype=torch.long) for c in columns)
    return MicroBatch(
        input_ids=_finish(input_ids, pin),
        attention_mask=None if attention_mask is None else _finish(attention_mask, pin),
        position_ids=_finish(position_ids, pin),
        target_positions=_finish(positions, pin),
        target_ids=_finish(ids, pin),
        rows=_finish(rows, pin),
        cols=_finish(cols, pin),
        num_tokens=num_tokens,
    )


def _build_padded(seqs: list[TrainSequence], pad_id: int, multiple: int, pin: bool) -> MicroBatch:
    inputs = [s.prompt_ids + s.completion_ids[:-1] for s in seqs]
    width = _round_up(max(len(x) for x in inputs), multiple)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    position_ids = torch.arange(width, dtype=torch.long).repeat(len(seqs), 1)
    for r, x in enumerate(inputs):
        input_ids[r, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        attention_mask[r, : len(x)] = 1
    targets = [_targets(s, r * width) for r, s in enumerate(seqs)]
    num_tokens = sum(len(x) for x in inputs)
    return _assemble(input_ids, attention_mask, position_ids, targets, num_tokens, pin)


def _build_packed(seqs: list[TrainSequence], pad_id: int, multiple: int, pin: bool) -> MicroBatch:
    tokens: list[int] = []
    positions: list[int] = []
    targets = []
    for s in seqs:
        x = s.prompt_ids + s.completion_ids[:-1]
        targets.append(_targets(s, len(tokens)))
        tokens += x
        positions += range(len(x))
    num_tokens = len(tokens)
    pad = _round_up(num_tokens, multiple) - num_tokens
    tokens += [pad_id] * pad
    positions += range(pad)  # the padding is one more sequence, starting again at 0
    input_ids = torch.tensor([tokens], dtype=torch.long)
    position_ids = torch.tensor([positions], dtype=torch.long)
    return _assemble(input_ids, None, position_ids, targets, num_tokens, pin)


# ---------------------------------------------------------------- using them


def completion_logprobs(
    model: torch.nn.Module, mb: MicroBatch, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Per-token log pi(y_t | y_<t) of the completion tokens of `mb`, shape (N,), float32, from
    logits / temperature (as in TRL's GRPOTrainer), plus the entropy of that distribution per
    target token when `with_entropy`. Logits are computed only at the columns that hold targets
    (`logits_to_keep`)."""
    from rewardkit.shared_prompt import SharedPromptBatch, shared_prompt_logprobs

    if isinstance(mb, SharedPromptBatch):
        return shared_prompt_logprobs(model, mb, temperature, with_entropy)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    device = next(model.parameters()).device
    if mb.input_ids.device != device:
        mb = mb.to(device)
    num_rows, width = mb.input_ids.shape
    keep = torch.unique(mb.target_positions % width)  # sorted columns holding a target
    out = model(
        input_ids=mb.input_ids,
        attention_mask=mb.attention_mask,
        position_ids=mb.position_ids,
        use_cache=False,  # with a cache, transformers would not detect the packed sequences
        logits_to_keep=keep,
    )
    logits = out.logits.reshape(num_rows * keep.numel(), -1)
    kept = (mb.target_positions // width) * keep.numel()
    kept = kept + torch.searchsorted(keep, mb.target_positions % width)
    return target_logprobs(logits[kept], mb.target_ids, temperature, with_entropy)


def target_logprobs(
    logits: Tensor, targets: Tensor, temperature: float, with_entropy: bool = False
) -> tuple[Tensor, Tensor | None]:
    """log softmax(logits / temperature) at each row's target, shape (N,), float32; and the
    entropy of each row's distribution when `with_entropy`. The entropy is a logged metric:
    it is computed without autograd, in chunks of rows, so the backward pass keeps no
    vocabulary-sized tensor for it (about 1 GB per tensor at 5k tokens of a 49k vocabulary)."""
    logprobs_all = torch.log_softmax(logits.float() / temperature, dim=-1)
    logprobs = logprobs_all.gather(-1, targets[:, None]).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = torch.cat(
                [-(chunk.exp() * chunk).sum(-1) for chunk in logprobs_all.detach().split(512)]
            )
    return logprobs, entropy
