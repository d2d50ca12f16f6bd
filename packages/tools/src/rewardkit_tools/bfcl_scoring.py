"""Scoring predictions on converted BFCL rows: exact match and BFCL-style acceptance.

- exact match: the predicted call list equals the training ground truth (first accepted
  values) in order, with types (ToolRL's exact case);
- acceptance (BFCL's AST checker, simplified): the same functions, in any order, every
  predicted value among the accepted values of its parameter (strings compared after
  BFCL's standardisation: spaces and ,./-_*^ removed, lower case, ' -> "; an int accepted
  for a float), no parameter outside the possible answer, and a parameter left out only
  when "" is accepted (or no value is listed). Irrelevance rows accept an answer without a
  call; relevance rows accept any well-formed call to an offered function.

Predictions are ToolRL-format completions (strings) or call lists, keyed by row id.
`BFCLBinaryReward` (`tools.bfcl_binary`) turns the exact match (or acceptance) into a 0/1
reward.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from rewardkit.types import RewardOutput
from rewardkit_tools.bfcl import is_nested_spec
from rewardkit_tools.toolrl import same_calls
from rewardkit_tools.toolrl_parse import MalformedToolCall, has_tag, parse_tool_calls

Calls = list[dict[str, Any]]


def standardize(text: str) -> str:
    """BFCL's string normalisation (so "April 1, 2024" matches "April 1,2024")."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def value_accepted(pred: Any, allowed: Any) -> bool:
    """Does predicted value `pred` match one accepted value `allowed`?"""
    if is_nested_spec(allowed):
        return isinstance(pred, dict) and params_accepted(pred, allowed)
    if isinstance(allowed, list):
        return (
            isinstance(pred, list)
            and len(pred) == len(allowed)
            and all(value_accepted(p, a) for p, a in zip(pred, allowed, strict=True))
        )
    if isinstance(allowed, dict):
        return (
            isinstance(pred, dict)
            and pred.keys() == allowed.keys()
            and all(value_accepted(pred[k], allowed[k]) for k in allowed)
        )
    if isinstance(allowed, str):
        return isinstance(pred, str) and standardize(pred) == standardize(allowed)
    if isinstance(allowed, bool) or isinstance(pred, bool):
        return type(pred) is type(allowed) and pred == allowed
    if isinstance(allowed, float) and isinstance(pred, int):
        return float(pred) == allowed
    return type(pred) is type(allowed) and pred == allowed


def params_accepted(pred: dict[str, Any], spec: dict[str, list[Any]]) -> bool:
    if set(pred) - set(spec):
        return False  # a parameter the answer does not know
    for key, accepted in spec.items():
        if key not in pred:
            if accepted and "" not in accepted:
                return False  # a needed parameter left out
        elif not any(value_accepted(pred[key], a) for a in accepted if a != ""):
            return False
    return True


def calls_accepted(pred: Calls, possible: list[dict[str, Any]]) -> bool:
    """Every possible-answer call matched by a distinct predicted call, in any order."""
    if len(pred) != len(possible):
        return False
    specs = [next(iter(item.items())) for item in possible]

    def assign(i: int, used: frozenset[int]) -> bool:  # small backtracking matcher
        if i == len(specs):
            return True
        name, spec = specs[i]
        return any(
            j not in used
            and p["name"] == name
            and params_accepted(p["parameters"], spec)
            and assign(i + 1, used | {j})
            for j, p in enumerate(pred)
        )

    return assign(0, frozenset())


def predicted_calls(prediction: str | Calls) -> Calls | None:
    """The calls of a prediction; [] when it makes none, None when its block is malformed."""
    if isinstance(prediction, list):
        return prediction
    if not isinstance(prediction, str):
        raise TypeError(
            f"a prediction is a completion string or a call list, got {type(prediction).__name__}"
        )
    if not has_tag(prediction, "tool_call"):
        return []
    try:
        return parse_tool_calls(prediction)
    except MalformedToolCall:
        return None


def judge(row: dict[str, Any], prediction: str | Calls) -> tuple[bool, bool]:
    """(exact match, accepted) of one prediction for one converted row."""
    calls = predicted_calls(prediction)
    if row.get("relevance"):
        ok = bool(calls) and all(c["name"] in row["function_names"] for c in calls)
        return ok, ok
    if not row["gt_calls"]:  # irrelevance: no call is right
        ok = not calls
        return ok, ok
    if calls is None:
        return False, False
    return same_calls(row["gt_calls"], calls), calls_accepted(calls, row["possible_answer"])


def evaluate(
    rows: list[dict[str, Any]], predictions: dict[str, str | Calls]
) -> dict[str, dict[str, float]]:
    """Per category (and "overall"): n, exact-match rate and acceptance rate."""
    missing = [r["id"] for r in rows if r["id"] not in predictions]
    if missing:
        raise KeyError(f"{len(missing)} rows have no prediction, e.g. {missing[:3]}")
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        exact, accepted = judge(row, predictions[row["id"]])
        for key in (row["category"], "overall"):
            counts[key][0] += 1
            counts[key][1] += int(exact)
            counts[key][2] += int(accepted)
    return {
        k: {"n": float(n), "exact_match": e / n, "accuracy": a / n}
        for k, (n, e, a) in counts.items()
    }


# -- the binary reward ----------------------------------------------------------------------
CRITERIA = ("exact", "accepted")


class BFCLBinaryReward:
    """`tools.bfcl_binary`: 1 when the completion's calls are right, else 0 — the coarse
    outcome reward that ToolRL's fine-grained reward is compared against (Qian et al.,
    arXiv 2504.13958, §5: "coarse" granularity, here without the format term).

    criterion "exact" (default): the call list equals the training ground truth (first
    accepted values), in order, type-sensitive (`judge`'s exact match); "accepted":
    BFCL-style acceptance (`calls_accepted`). The layout is not scored: text around the
    `<tool_call>` block and a missing `<think>` cost nothing. A malformed block scores 0.
    Needs the converted BFCL row as `sample.meta` (gt_calls, possible_answer, ...).
    """

    def __init__(self, criterion: str = "exact"):
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        self.criterion = criterion

    def score(self, sample: Any) -> RewardOutput:
        row = sample.meta
        missing = [k for k in ("gt_calls", "possible_answer", "function_names") if k not in row]
        if missing:
            raise KeyError(
                f"tools.bfcl_binary needs a converted BFCL row as sample.meta; missing {missing}"
            )
        exact, accepted = judge(row, sample.completion)
        hit = exact if self.criterion == "exact" else accepted
        malformed = predicted_calls(sample.completion) is None
        return RewardOutput(
            float(hit),
            info={
                "exact": float(exact),
                "accepted": float(accepted),
                "malformed": float(malformed),
            },
        )

    def __call__(self, samples: list[Any]) -> list[RewardOutput]:
        return [self.score(s) for s in samples]
