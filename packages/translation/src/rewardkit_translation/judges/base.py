"""The judge interface: compare the policy's translation with the exemplar.

ExTrans (arXiv 2505.12996) scores a policy translation by comparing it with an exemplar
written offline by a stronger model; the comparison has three outcomes (better, equal,
worse). A judge takes a batch of requests and returns one `Judgement` per request. Judges
that measure quality (the metric judge) also return the two quality scores, which the
continuous reward variant needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    """How the policy's translation compares with the exemplar."""

    BETTER = "better"
    EQUAL = "equal"
    WORSE = "worse"


@dataclass(frozen=True)
class JudgeRequest:
    source: str
    translation: str  # the policy's
    exemplar: str
    reference: str | None = None
    source_lang: str | None = None
    target_lang: str | None = None


@dataclass
class Judgement:
    outcome: Outcome | None  # None: the judge gave no usable answer (see `unparseable`)
    q_policy: float | None = None  # quality scores, for the continuous variant
    q_exemplar: float | None = None
    unparseable: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class Judge(Protocol):
    """`await judge.judge(requests)` -> one Judgement per request, in order."""

    async def judge(self, requests: list[JudgeRequest]) -> list[Judgement]: ...

    def stats(self) -> dict[str, float]: ...


def outcome_from_scores(q_policy: float, q_exemplar: float, margin: float) -> Outcome:
    """Three-way outcome from two quality scores: equal when |q_p - q_e| <= margin."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    diff = q_policy - q_exemplar
    if abs(diff) <= margin:
        return Outcome.EQUAL
    return Outcome.BETTER if diff > 0 else Outcome.WORSE


def build_judge(spec: dict[str, Any] | str | None) -> Judge:
    """A judge from a config mapping: {"type": "metric" | "llm", ...options}.

    A bare string is the type with default options; None is the metric judge (the
    embedded default: no model needed).
    """
    if spec is None:
        spec = {"type": "metric"}
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise TypeError(f"judge must be a mapping with a 'type', got {spec!r}")
    options = dict(spec)
    kind = options.pop("type", "metric")
    if kind == "metric":
        from rewardkit_translation.judges.metric import MetricJudge

        return MetricJudge(**options)
    if kind == "llm":
        from rewardkit_translation.judges.llm import LLMJudge

        return LLMJudge.from_options(**options)
    raise ValueError(f"judge type must be 'metric' or 'llm', got {kind!r}")
