"""ToolRL rewards: format + correctness of tool calls (Qian et al., arXiv 2504.13958, §3.3).

    R = R_format + R_correct,  R_format ∈ {0, 1},  R_correct ∈ [−3, 3]   (so R ∈ [−3, 4])

R_format (eq. 2) is 1 when the whole answer has the layout implied by the ground truth:
    response only  <think>…</think>\\n<response>…</response>
    tool call only <think>…</think>\\n<tool_call>\\n…\\n</tool_call>
    both           <think>…</think>\\n<tool_call>\\n…\\n</tool_call>\\n<response>…</response>
    neither        <think>…</think>
with exactly one of each tag it uses (and none of the others).

R_correct (eq. 3-6), G the ground-truth calls, P the predicted calls:
    r_name      = multiset Jaccard of the call names
    for each g ∈ G, in order: best unused p with p.name = g.name maximising
                  param_score (Jaccard of parameter names) + value_score (#g's params whose
                  value p repeats, type-sensitive); strictly greater wins, must be > 0
    S_max = 1 + |G| + Σ_g |params(g)|,  R_max = r_name + Σ best,  R_correct = 6·R_max/S_max − 3
Special cases: the exact call list → +3; a malformed predicted block → −3; a ground truth
without a call → 0.

Ablation options (paper §5), as the reference code (github.com/qiancheng0/ToolRL,
verl/utils/reward_score/rlla.py) computes them:
- `granularity`: "fine" (above); "intermediate": a ground-truth call scores 1 when a
  predicted call equals it (name and parameters), else 0, against S_max = 1 + |G| (the
  reference's INTERMEDIATEREWARD); "coarse": the exact call list (+3) or nothing (−3).
- `scale="dynamic"` (the reference's SCHEDULEREWARD): over `schedule_steps` = 150 trainer
  steps, format moves from [−2, 2] to [−1, 1] and correctness from [−2, 2] to [−3, 3]. Each
  bound moves linearly toward a target (format: the static [0, 1]; correctness: [−3, 3])
  at the rate that reaches it at step 150, and stops at its end value: format's low bound
  reaches −1 at step 75 and stays there.
- `length_reward` adds min(think_words / 512, 1).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Literal

from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.types import RewardOutput, Sample
from rewardkit_tools.toolrl_parse import (
    TAGS,
    MalformedToolCall,
    block,
    has_tag,
    parse_tool_calls,
)

Granularity = Literal["fine", "intermediate", "coarse"]
GRANULARITIES = ("fine", "intermediate", "coarse")

_LAYOUTS = {  # (tool_call expected, response expected) -> full-answer pattern
    (False, True): r"<think>.*?</think>\n<response>.*?</response>",
    (True, False): r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>",
    (True, True): r"<think>.*?</think>\n<tool_call>\n.*?\n</tool_call>\n<response>.*?</response>",
    (False, False): r"<think>.*?</think>",
}


# -- format ---------------------------------------------------------------------------------
def expected_layout(ground_truth: str) -> tuple[bool, bool]:
    """(has a tool call, has a response) in the ground-truth answer."""
    return has_tag(ground_truth, "tool_call"), has_tag(ground_truth, "response")


def format_score(completion: str, ground_truth: str) -> float:
    """R_format ∈ {0, 1}: the layout the ground truth implies, each used tag exactly once,
    unused tags absent. Surrounding whitespace of the completion is ignored."""
    calls, response = expected_layout(ground_truth)
    text = completion.strip()
    used = {"think": True, "tool_call": calls, "response": response}
    for tag in TAGS:  # counted first: with one tag of each, the pattern below runs in O(n)
        want = 1 if used[tag] else 0
        if text.count(f"<{tag}>") != want or text.count(f"</{tag}>") != want:
            return 0.0
    matched = re.fullmatch(_LAYOUTS[(calls, response)], text, flags=re.DOTALL)
    return 0.0 if matched is None else 1.0


# -- correctness ----------------------------------------------------------------------------
def multiset_jaccard(a: list[Any], b: list[Any]) -> float:
    """Σ_k min(cnt_a(k), cnt_b(k)) / (|a| + |b| − that sum); 1.0 for identical lists
    (two empty lists included)."""
    if a == b:
        return 1.0
    ca, cb = Counter(a), Counter(b)
    inter = sum(min(n, cb[k]) for k, n in ca.items())
    union = len(a) + len(b) - inter
    return inter / union if union > 0 else 0.0


def same_value(a: Any, b: Any) -> bool:
    """Type-sensitive equality: 1 ≠ 1.0 ≠ True, recursing into lists and dicts."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def same_calls(gt: list[dict[str, Any]], pred: list[dict[str, Any]]) -> bool:
    return len(gt) == len(pred) and all(
        g["name"] == p["name"] and same_value(g["parameters"], p["parameters"])
        for g, p in zip(gt, pred, strict=True)
    )


def call_match_score(g: dict[str, Any], p: dict[str, Any], granularity: Granularity) -> float:
    """param_score + value_score of predicted call p against ground-truth call g (fine);
    all or nothing (1 when the parameters are identical) for intermediate."""
    gp, pp = g["parameters"], p["parameters"]
    if granularity == "intermediate":
        return 1.0 if same_value(gp, pp) else 0.0
    param_score = multiset_jaccard(list(gp), list(pp))
    value_score = sum(1.0 for k, v in gp.items() if k in pp and same_value(pp[k], v))
    return param_score + value_score


def correctness_fraction(
    gt: list[dict[str, Any]], pred: list[dict[str, Any]], granularity: Granularity = "fine"
) -> tuple[float, dict[str, float]]:
    """R_max / S_max ∈ [0, 1] for a non-empty ground-truth call list (exact match = 1)."""
    if not gt:
        raise ValueError("correctness needs at least one ground-truth call")
    if same_calls(gt, pred):
        return 1.0, {"exact": 1.0}
    if granularity == "coarse":
        return 0.0, {"exact": 0.0}
    r_name = multiset_jaccard([c["name"] for c in gt], [c["name"] for c in pred])
    s_max = 1.0 + len(gt)  # intermediate: at most 1 per call
    if granularity == "fine":
        s_max += sum(len(g["parameters"]) for g in gt)
    used: set[int] = set()
    r_max = r_name
    for g in gt:
        best, best_i = 0.0, -1
        for i, p in enumerate(pred):
            if i in used or p["name"] != g["name"]:
                continue
            score = call_match_score(g, p, granularity)
            if score > best:
                best, best_i = score, i
        if best_i >= 0:
            used.add(best_i)
            r_max += best
    return r_max / s_max, {"exact": 0.0, "r_name": r_name, "r_max": r_max, "s_max": s_max}


def correctness_score(
    completion: str,
    ground_truth: str,
    granularity: Granularity = "fine",
    low: float = -3.0,
    high: float = 3.0,
    any_call_names: list[str] | None = None,
) -> tuple[float, dict[str, Any]]:
    """R_correct ∈ [low, high] (default [−3, 3]): (high − low)·R_max/S_max + low.

    `any_call_names` is for BFCL relevance rows (a call is needed but any well-formed call
    to one of these functions is right): high when every predicted call names one of them.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if not has_tag(ground_truth, "tool_call"):
        return 0.0, {"case": "no ground-truth call"}
    try:
        pred = parse_tool_calls(completion)
    except MalformedToolCall as exc:
        return low, {"case": "malformed", "error": str(exc)[:200]}
    if any_call_names is not None:
        ok = bool(pred) and all(c["name"] in any_call_names for c in pred)
        return (high if ok else low), {"case": "relevance"}
    gt = parse_tool_calls(ground_truth, where="ground truth")
    if not gt:
        raise ValueError("the ground truth has an empty <tool_call> block")
    frac, info = correctness_fraction(gt, pred, granularity)
    return (high - low) * frac + low, info


def think_words(completion: str) -> int:
    content = block(completion, "think")
    return 0 if content is None else len(content.split())


# -- scale schedule -------------------------------------------------------------------------
class ScaleSchedule:
    """Format and correctness ranges at a trainer step. "static": [0, 1] and [−3, 3].

    "dynamic" (paper §5, reward dynamics; the reference code's SCHEDULEREWARD): each bound
    of each range moves linearly from its `*_start` value toward its `*_toward` value,
    reaching it at `steps`, and stops at its `*_end` value (`*_toward` defaults to
    `*_end`). Defaults are the reference's: format from [−2, 2] toward the static [0, 1],
    stopping at [−1, 1] (the low bound stops at step 75); correctness from [−2, 2] to
    [−3, 3] over 150 steps. R = format + correctness then lies in [−4, 4].
    """

    def __init__(
        self,
        kind: Literal["static", "dynamic"] = "static",
        steps: int = 150,
        format_start: tuple[float, float] = (-2.0, 2.0),
        format_end: tuple[float, float] = (-1.0, 1.0),
        correct_start: tuple[float, float] = (-2.0, 2.0),
        correct_end: tuple[float, float] = (-3.0, 3.0),
        format_toward: tuple[float, float] | None = (0.0, 1.0),
        correct_toward: tuple[float, float] | None = None,
    ):
        if kind not in ("static", "dynamic"):
            raise ValueError(f"scale must be 'static' or 'dynamic', got {kind!r}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"schedule_steps must be a positive int, got {steps!r}")
        format_toward = format_end if format_toward is None else format_toward
        correct_toward = correct_end if correct_toward is None else correct_toward
        pairs = {}
        for name, pair in [
            ("format_start", format_start),
            ("format_end", format_end),
            ("format_toward", format_toward),
            ("correct_start", correct_start),
            ("correct_end", correct_end),
            ("correct_toward", correct_toward),
        ]:
            if len(pair) != 2:
                raise ValueError(f"{name} must be a (low, high) pair, got {pair!r}")
            lo, hi = float(pair[0]), float(pair[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"{name} must be a finite range (low < high), got {(lo, hi)}")
            pairs[name] = (lo, hi)
        for which in ("format", "correct"):
            start, end, toward = (pairs[f"{which}_{k}"] for k in ("start", "end", "toward"))
            for b in (0, 1):  # the end must lie between start and toward
                if not min(start[b], toward[b]) <= end[b] <= max(start[b], toward[b]):
                    raise ValueError(
                        f"{which}_end {end} must lie between {which}_start {start} and "
                        f"{which}_toward {toward}"
                    )
        self.kind, self.steps = kind, steps
        self.pairs = pairs

    def ranges(self, step: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """((format low, high), (correctness low, high)) at trainer step `step`."""
        if self.kind == "static":
            return (0.0, 1.0), (-3.0, 3.0)
        t = max(step, 0) / self.steps
        out = []
        for which in ("format", "correct"):
            start, end, toward = (self.pairs[f"{which}_{k}"] for k in ("start", "end", "toward"))
            bounds = []
            for b in (0, 1):
                value = start[b] + t * (toward[b] - start[b])
                bounds.append(min(value, end[b]) if toward[b] >= start[b] else max(value, end[b]))
            out.append((bounds[0], bounds[1]))
        return out[0], out[1]


# -- the rewards ----------------------------------------------------------------------------
def ground_truth_of(sample: Sample) -> str:
    gt = sample.meta.get("ground_truth")
    if not isinstance(gt, str):
        raise KeyError(
            "tools.toolrl needs meta['ground_truth']: the reference answer in ToolRL layout "
            f"(a string with <tool_call> and/or <response>), got {type(gt).__name__}"
        )
    return gt


class ToolRLReward:
    """`tools.toolrl`: R_format + R_correct (+ the optional length reward) per sample.

    The dynamic scale follows the trainer step of the `RewardContext` the trainer passes
    (step 0 without one), so evaluation batches and resampling rounds do not advance it and
    a resumed run picks it up where it was. Rows with `meta['relevance']` accept any
    well-formed call to one of `meta['function_names']`.
    """

    def __init__(
        self,
        granularity: Granularity = "fine",
        scale: Literal["static", "dynamic"] = "static",
        schedule_steps: int = 150,
        length_reward: bool = False,
        length_words: int = 512,
        format_weight: float = 1.0,
        correctness_weight: float = 1.0,
        **schedule_ranges: tuple[float, float],
    ):
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        if length_words < 1:
            raise ValueError(f"length_words must be >= 1, got {length_words}")
        self.granularity = granularity
        self.schedule = ScaleSchedule(scale, schedule_steps, **schedule_ranges)
        self.length_reward, self.length_words = length_reward, length_words
        self.format_weight, self.correctness_weight = format_weight, correctness_weight

    def score(self, sample: Sample, step: int = 0) -> RewardOutput:
        gt = ground_truth_of(sample)
        (f_lo, f_hi), (c_lo, c_hi) = self.schedule.ranges(step)
        fmt = f_lo + (f_hi - f_lo) * format_score(sample.completion, gt)
        names = sample.meta.get("function_names") if sample.meta.get("relevance") else None
        correct, info = correctness_score(
            sample.completion, gt, self.granularity, c_lo, c_hi, any_call_names=names
        )
        total = self.format_weight * fmt + self.correctness_weight * correct
        info = {**info, "format": fmt, "correctness": correct}
        if self.length_reward:
            length = min(think_words(sample.completion) / self.length_words, 1.0)
            total += length
            info["length"] = length
        return RewardOutput(total, info=info)

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        step = 0 if context is None else context.step
        return [self.score(s, step) for s in samples]


class ToolRLFormatReward:
    """`tools.toolrl_format`: R_format alone, ∈ {0, 1}."""

    def __call__(self, samples: list[Sample]) -> list[float]:
        return [format_score(s.completion, ground_truth_of(s)) for s in samples]
