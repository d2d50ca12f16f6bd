"""`recsys.id_match`: SRPO's residual-sensitive verifiable reward (GREAM, arXiv 2510.20815,
§3.3, as in the authors' released code), credited on real items only.

With m the longest common prefix, in ID tokens, of the predicted and the true ID:

    format invalid, no ID parsed, or an ID that is no item → 0   (counted as invalid)
    exact match                                            → 1.0
    m ≥ 1                                                  → [0.5, 0.707, 0.866, 0.95][min(m, 4) − 1]
    m = 0                                                  → 0

Only a complete ID of a catalogue item earns credit: a truncated ID (a proper prefix of
an item's ID) or a token string that spells no item scores 0, like a format error. The
prefix ladder then measures how close a real recommended item is to the true one, which
is what evaluation ranks (trie-constrained search over real items). The catalogue comes
with each row, `meta["item_ids"]`: the set of every item's ID string (the task puts one
shared set in every row).

Format: in direct mode the completion is the ID alone; in reasoning mode it is
`<think>…</think><answer>ID</answer>` (non-empty think). An ID is ID tokens whose level
letters run a, b, c, … in order.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Literal

from rewardkit.rewards.lifecycle import RewardContext
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
    predicted: Sequence[str] | None,
    truth: Sequence[str],
    item_ids: Collection[str],
    credit: Sequence[float] = PREFIX_CREDIT,
) -> tuple[float, int, bool]:
    """(reward, m, valid) for predicted ID tokens (None = format invalid) against the true
    ones; `valid`: the prediction is the complete ID of an item in `item_ids`."""
    if predicted is None or "".join(predicted) not in item_ids:
        return 0.0, 0, False
    m = common_prefix(predicted, truth)
    if list(predicted) == list(truth):
        return 1.0, m, True
    if m == 0:
        return 0.0, 0, True
    return float(credit[min(m, len(credit)) - 1]), m, True


class IdMatchReward:
    """Batch reward; reads `meta["target_id"]` (the true ID string), `meta["item_ids"]`
    (every item's ID string) and, with mode="auto", `meta["mode"]` ("direct" or
    "reasoning", default "direct").

    `stats()` (logged by the trainer as `reward/recsys.id_match/<key>` each step) gives,
    over the training samples scored since the last call: `invalid_fraction` (no complete
    item ID) and `groups_with_hit` (the share of prompt groups with at least one exact hit:
    the groups where SRPO's pass@k bonus fires)."""

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
        self._counts = {"samples": 0, "invalid": 0, "groups": 0, "groups_with_hit": 0}

    def score(self, sample: Sample) -> RewardOutput:
        for key in ("target_id", "item_ids"):
            if key not in sample.meta:
                raise KeyError(f"recsys.id_match needs the dataset row to have an {key!r}")
        mode = sample.meta.get("mode", "direct") if self.mode == "auto" else self.mode
        if mode not in ("direct", "reasoning"):
            raise ValueError(f"recsys.id_match: row mode must be direct or reasoning, got {mode!r}")
        predicted = parse_prediction(sample.completion, mode)
        truth = split_id(sample.meta["target_id"])
        score, m, valid = id_match_score(predicted, truth, sample.meta["item_ids"], self.credit)
        info = {"format_ok": predicted is not None, "valid": valid, "exact": score == 1.0}
        return RewardOutput(score, info=info | {"prefix": m})

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        outputs = [self.score(s) for s in samples]
        if context is None or context.phase == "train":
            hit: dict[int, bool] = {}
            for s, out in zip(samples, outputs, strict=True):
                hit[s.group] = hit.get(s.group, False) or out.info["exact"]
            self._counts["samples"] += len(samples)
            self._counts["invalid"] += sum(not out.info["valid"] for out in outputs)
            self._counts["groups"] += len(hit)
            self._counts["groups_with_hit"] += sum(hit.values())
        return outputs

    def stats(self) -> dict[str, float]:
        """Shares over the training samples scored since the last call (then reset)."""
        c = self._counts
        if not c["samples"]:
            return {}
        out = {
            "invalid_fraction": c["invalid"] / c["samples"],
            "groups_with_hit": c["groups_with_hit"] / max(c["groups"], 1),
        }
        self._counts = dict.fromkeys(c, 0)
        return out
