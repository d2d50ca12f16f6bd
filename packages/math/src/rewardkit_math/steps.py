"""Reasoning steps of a completion and the completion token at which each step ends.

A step is a maximal piece of text between delimiters (default: a blank line, "\\n\\n");
empty pieces (delimiters in a row, leading or trailing delimiters) are not steps. Each step
is a character span [start, end) of the completion, without the delimiter.

The token at which step k ends is the completion token that contains the step's last
character (`RewardOutput.step_ends` is inclusive). Character-to-token alignment comes from
a fast tokenizer's offsets mapping; when re-tokenizing the text does not reproduce the
sample's completion ids (generation can pick a different but equally valid tokenization),
it falls back to decoding prefixes of the ids.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    start: int  # first character of the step in the completion
    end: int  # one past its last character

    def text(self, completion: str) -> str:
        return completion[self.start : self.end]


def split_steps(text: str, delimiter: str = "\n\n") -> list[Step]:
    """Character spans of the non-empty steps of `text`, in order.

    A step made only of whitespace is not a step; surrounding whitespace stays in the
    span except at its end, so the step ends at its last visible character.
    """
    if not delimiter:
        raise ValueError("the step delimiter must be a non-empty string")
    steps: list[Step] = []
    pos = 0
    for piece in text.split(delimiter):
        stripped = piece.rstrip()
        if stripped.strip():
            steps.append(Step(pos, pos + len(stripped)))
        pos += len(piece) + len(delimiter)
    return steps


class _DecodedCharEnds(Sequence[int]):
    """Lazy `len(decode(ids[: t + 1]))`: bisect reads only O(K log T) of them."""

    def __init__(self, tokenizer: Any, ids: list[int], limit: int):
        self.tokenizer, self.ids, self.limit = tokenizer, ids, limit
        self.cache: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, t):  # type: ignore[override]
        if t not in self.cache:
            text = self.tokenizer.decode(self.ids[: t + 1], skip_special_tokens=True)
            self.cache[t] = min(len(text), self.limit)
        return self.cache[t]


def token_char_ends(tokenizer: Any, text: str, ids: Sequence[int] | None = None) -> Sequence[int]:
    """For every token of `ids` (default: the tokenization of `text`), one past the last
    character of `text` it covers; non-decreasing.

    Uses the offsets mapping when the tokenizer reproduces `ids` from `text`; otherwise
    decodes prefixes of `ids` lazily (exact for any tokenizer whose decode of a prefix
    of the ids is a prefix of `text`).
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if ids is None or list(enc["input_ids"]) == list(ids):
        ends, last = [], 0
        for _, end in enc["offset_mapping"]:
            last = max(last, end)
            ends.append(last)
        return ends
    return _DecodedCharEnds(tokenizer, list(ids), len(text))


def step_token_ends(steps: Sequence[Step], char_ends: Sequence[int]) -> list[int]:
    """Index of the token holding each step's last character (first token whose character
    end reaches `step.end`). A step beyond the last token is an error naming it."""
    out: list[int] = []
    for k, step in enumerate(steps):
        t = bisect_left(char_ends, step.end)
        if t >= len(char_ends):
            raise ValueError(
                f"step {k} ends at character {step.end} but the tokens cover only "
                f"{char_ends[-1] if char_ends else 0} characters"
            )
        out.append(t)
    return out


def segment(
    text: str,
    tokenizer: Any,
    ids: Sequence[int] | None = None,
    delimiter: str = "\n\n",
) -> tuple[list[Step], list[int]]:
    """Steps of `text` and the token index at which each ends (strictly increasing).

    Two steps that end inside the same token (a token spanning a delimiter) are merged,
    so that every step has its own end token.
    """
    steps = split_steps(text, delimiter)
    if not steps:
        return [], []
    ends = step_token_ends(steps, token_char_ends(tokenizer, text, ids))
    merged_steps: list[Step] = []
    merged_ends: list[int] = []
    for step, end in zip(steps, ends, strict=True):
        if merged_ends and end == merged_ends[-1]:
            merged_steps[-1] = Step(merged_steps[-1].start, step.end)
        else:
            merged_steps.append(step)
            merged_ends.append(end)
    return merged_steps, merged_ends
