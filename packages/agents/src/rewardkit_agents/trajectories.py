"""What SALT and GiGPO share: reading the turns of a `RolloutBatch`, state identity,
group baselines, and spreading per-step values over the tokens of each step.

State identity. The state *before* step t of a trajectory is ``turns[t].state`` when the
rollout recorded it (the environment's `state()` before the action), else
``turns[t-1].next_state`` (its `state()` after the previous action), otherwise the
observation the policy saw: ``turns[t-1].observation``, or ``START`` for t = 0 (every
sample of a group starts from the same prompt and reset, so the same first state). The
state after the last step (t = len(turns)) follows the same rule: the last turn's
`next_state` when recorded, so an episode's final transition is keyed like the same
transition in the middle of another episode; its observation only when the rollout
recorded no states. `canon` normalises whitespace and case of every string in a
state, so "You moved  Up" and "you moved up" are one state.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch

from rewardkit.advantages.base import (
    GRPO_EPS,
    check_batch,
    group_inverse,
    group_mean,
    group_std,
)
from rewardkit.types import RolloutBatch, Turn

START = "<start>"
StateFn = Callable[[Sequence[Turn], int], Hashable]


def canon(value: Any) -> Hashable:
    """Normalise whitespace and case of strings, recursively through tuples/lists/dicts."""
    if value is None or type(value) in (int, float, bool):  # fast path for numeric states
        return value
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, list | tuple):
        return tuple(canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), canon(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(canon(v) for v in value)
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"a turn state must be hashable (or a list/dict of hashables), got "
            f"{type(value).__name__}: {value!r}"
        ) from None
    return value


def default_state(turns: Sequence[Turn], t: int) -> Hashable:
    """The state before step t (t == len(turns): the state after the last step)."""
    if t < len(turns) and turns[t].state is not None:
        return canon(turns[t].state)
    if t == 0:
        return START
    if turns[t - 1].next_state is not None:
        return canon(turns[t - 1].next_state)
    return canon(turns[t - 1].observation)


def committed_action(text: str) -> Hashable:
    """Action identity for the graph: canon() of the committed part of the action text
    (the last <action> tag or `Action:` line when there is one, else the whole text), so
    that reasoning written before the tag does not split one action into many edges."""
    from rewardkit_agents.envs.parsing import committed_text

    return canon(committed_text(text).strip(" \t\r\n.!'\"`*"))


def resolve_callable(value: Any, what: str) -> Callable[..., Any]:
    """A callable given directly or as "module:attribute" (how a YAML config names it)."""
    if callable(value):
        return value
    if isinstance(value, str) and ":" in value:
        module, _, attr = value.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"{what} {value!r} cannot be imported: {exc}") from exc
    raise ValueError(f"{what} must be a callable or 'module:function', got {value!r}")


def batch_turns(batch: RolloutBatch, who: str) -> list[list[Turn]]:
    """Each sample's turns (empty when None), checked against the completion tokens."""
    check_batch(batch, who)
    B, T = batch.completion_mask.shape
    if batch.turns is None:
        raise ValueError(
            f"{who} needs multi-turn rollouts: batch.turns is None (no sample has turns)"
        )
    if len(batch.turns) != B:
        raise ValueError(f"{who}: batch.turns has {len(batch.turns)} entries for {B} samples")
    out = []
    for i, turns in enumerate(batch.turns):
        turns = list(turns or [])
        previous_end = 0
        for k, turn in enumerate(turns):
            if not isinstance(turn, Turn):
                raise TypeError(f"{who}: sample {i} turn {k} is {type(turn).__name__}, not Turn")
            if not (previous_end <= turn.start <= turn.end <= T):
                raise ValueError(
                    f"{who}: sample {i} turn {k} spans tokens [{turn.start}, {turn.end}), which "
                    f"is not inside [{previous_end}, {T}] after the previous turn"
                )
            if not isinstance(turn.action, str):
                raise TypeError(f"{who}: sample {i} turn {k} action is not text: {turn.action!r}")
            previous_end = turn.end
        out.append(turns)
    return out


def group_advantages(
    scores: torch.Tensor, groups: torch.Tensor, estimator: str = "grpo", eps: float = GRPO_EPS
) -> torch.Tensor:
    """Outcome advantage of each sample against its prompt group, shape (B,), float64.

    The same conventions as core's `grpo`, `dr_grpo` and `rloo` estimators:
    grpo:        (R_i - mean_g R) / (std_g R + eps), std with Bessel's correction (torch.std,
                 TRL), 0 for a group of one (Shao et al. 2024, DeepSeekMath eq. 3);
    grpo_no_std: R_i - mean_g R;
    rloo:        R_i - mean_{j != i, j in g} R_j = G/(G-1) (R_i - mean_g R), 0 for a group
                 of one (Ahmadian et al. 2024).
    """
    r = scores.double()
    centred = r - group_mean(r, groups)
    if estimator == "grpo":
        std = group_std(r, groups)
        # std == 0 means every centred value is 0: keep 0 (also when eps is 0)
        return torch.where(std > 0, centred / (std + eps), torch.zeros_like(centred))
    if estimator == "grpo_no_std":
        return centred
    if estimator == "rloo":
        inverse, counts = group_inverse(groups)
        n = counts[inverse].to(r.dtype)
        return torch.where(n > 1, n / (n - 1).clamp(min=1) * centred, torch.zeros_like(centred))
    raise ValueError(f"unknown estimator {estimator!r}; use 'grpo', 'grpo_no_std' or 'rloo'")


def spread_steps(
    batch: RolloutBatch,
    turns: list[list[Turn]],
    step_values: list[list[float]],
    outside: torch.Tensor,
) -> torch.Tensor:
    """(B, T) advantages: step t's value on the tokens of turns[t], `outside[i]` on any
    other policy token of sample i, and 0 wherever completion_mask is 0."""
    mask = batch.completion_mask
    adv = outside.to(mask.device, torch.float32)[:, None].expand_as(mask).clone()
    rows, starts, lengths, values = [], [], [], []
    for i, (sample_turns, sample_values) in enumerate(zip(turns, step_values, strict=True)):
        for turn, value in zip(sample_turns, sample_values, strict=True):
            rows.append(i)
            starts.append(turn.start)
            lengths.append(turn.end - turn.start)
            values.append(value)
    if rows:  # one indexed write for all step spans
        device = mask.device
        length = torch.tensor(lengths, device=device)
        first = torch.repeat_interleave(torch.cumsum(length, 0) - length, length)
        offset = torch.arange(int(length.sum()), device=device) - first
        cols = torch.repeat_interleave(torch.tensor(starts, device=device), length) + offset
        row_index = torch.repeat_interleave(torch.tensor(rows, device=device), length)
        adv[row_index, cols] = torch.repeat_interleave(
            torch.tensor(values, dtype=torch.float32, device=device), length
        )
    return adv * (mask != 0)
