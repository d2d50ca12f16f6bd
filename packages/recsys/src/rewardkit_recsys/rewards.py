"""`recsys.id_match`: SRPO's residual-sensitive verifiable reward (GREAM, arXiv 2510.20815,
§3.3, as in the authors' released code).

With m the longest common prefix, in ID tokens, of the predicted and the true ID:

    format invalid or no ID parsed → 0
    exact match                    → 1.0
    m ≥ 1                          → [0.5, 0.707, 0.866, 0.95][min(m, 4) − 1]
    m = 0                          → 0

Format: in direct mode the completion is the ID alone; in reasoning mode it is
`<think>…</think><answer>ID</answer>` (non-empty think). An ID is ID tokens whose level
letters run a, b, c, … in order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from rewardkit.types import RewardOutput, Sample
from rewardkit_recsys.semantic_ids import LETTERS, TOKEN, SemanticIDError, split_id

PREFIX_CREDIT = (0.5, 0.707, 0.866, 0.95)
REASONING_FORMAT = re.compile(r"\s*<think>(.+?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)

Mode = Literal["auto", "direct", "reasoning"]


def parse_prediction(completion: str, mode: Literal["direct", "reasoning"]) -> list[str] | None:
    """The predicted ID tokens, or None when the format is invalid or no ID is there."""
    if mode == "reasoning":
        m = REASONING_FORMAT.fullmatch(completion)
        if m is None or not m.group(1).strip():
            return None
        completion = m.group(2)
    try:
        tokens = split_id(completion)
    except SemanticIDError:
        return None
    for level, tok in enumerate(tokens):
        if level >= len(LETTERS) or TOKEN.fullmatch(tok).group(1) != LETTERS[level]:
            return None
    return tokens


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    m = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        m += 1
    return m


def id_match_score(
    predicted: Sequence[str] | None, truth: Sequence[str], credit: Sequence[float] = PREFIX_CREDIT
) -> tuple[float, int]:
    """(reward, m) for predicted ID tokens (None = format invalid) against the true ones."""
    if predicted is None:
        return 0.0, 0
    m = common_prefix(predicted, truth)
    if list(predicted) == list(truth):
        return 1.0, m
    if m == 0:
        return 0.0, 0
    return float(credit[min(m, len(credit)) - 1]), m


class IdMatchReward:
    """Batch reward; reads `meta["target_id"]` (the true ID string) and, with mode="auto",
    `meta["mode"]` ("direct" or "reasoning", default "direct")."""

    name = "recsys.id_match"

    def __init__(self, mode: Mode = "auto", credit: Sequence[float] = PREFIX_CREDIT):
        if mode not in ("auto", "direct", "reasoning"):
            raise ValueError(
                f"recsys.id_match: mode must be auto, direct or reasoning, got {mode!r}"
            )
        credit = [float(c) for c in credit]
        if not credit or any(not 0.0 <= c <= 1.0 for c in credit):
            raise ValueError(f"recsys.id_match: credit must be values in [0, 1], got {credit}")
        self.mode, self.credit = mode, credit

    def score(self, sample: Sample) -> RewardOutput:
        if "target_id" not in sample.meta:
            raise KeyError("recsys.id_match needs the dataset row to have a 'target_id'")
        mode = sample.meta.get("mode", "direct") if self.mode == "auto" else self.mode
        if mode not in ("direct", "reasoning"):
            raise ValueError(f"recsys.id_match: row mode must be direct or reasoning, got {mode!r}")
        predicted = parse_prediction(sample.completion, mode)
        score, m = id_match_score(predicted, split_id(sample.meta["target_id"]), self.credit)
        return RewardOutput(
            score, info={"format_ok": predicted is not None, "exact": score == 1.0, "prefix": m}
        )

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        return [self.score(s) for s in samples]
