"""Translation rewards: ExTrans exemplar comparison, the mExTrans multilingual reward and
sentence-level chrF / BLEU.

ExTrans (arXiv 2505.12996), exemplar-comparison reward:

    r = 0                                          if the format is invalid
    r = v[outcome(judge(src, policy, exemplar))]   otherwise, v = {better: 1, equal: .5, worse: 0}

and its continuous variant r = clip(0.5 + (q(policy) - q(exemplar)) / s, 0, 1).

mExTrans lightweight multilingual reward, for directions without exemplars:

    r = format × [langid(output) = target] × (metric(output, ref) / 100 if ref else 1)
        × [len(output) / len(source) within the pair's band]

Each reward reads the dataset row from `Sample.meta`: `source`, `source_lang`,
`target_lang`, optional `reference`, and `exemplar` for the exemplar reward.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from rewardkit.types import RewardOutput, Sample
from rewardkit_translation.format import extract_translation, parse_output
from rewardkit_translation.judges.base import (
    Judge,
    Judgement,
    JudgeRequest,
    Outcome,
    build_judge,
)
from rewardkit_translation.languages import check_language, identify, length_band
from rewardkit_translation.metrics import check_metric, sentence_score

DEFAULT_VALUES = {"better": 1.0, "equal": 0.5, "worse": 0.0}


def row_text(sample: Sample, key: str, reward: str, required: bool = True) -> str | None:
    """meta[key] as a string; a clear error naming the reward and the row when missing."""
    value = sample.meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if not required:
            return None
        row = sample.meta.get("id", f"group {sample.group}")
        raise ValueError(
            f"{reward}: dataset row {row!r} has no {key!r} (got keys {sorted(sample.meta)})"
        )
    if not isinstance(value, str):
        raise TypeError(f"{reward}: meta[{key!r}] must be a string, got {type(value).__name__}")
    return value


def outcome_values(values: dict[str, float] | None) -> dict[Outcome, float]:
    """The outcome -> reward table; keys left out keep the ExTrans defaults."""
    values = dict(values or {})
    unknown = set(values) - set(DEFAULT_VALUES)
    if unknown:
        raise ValueError(f"values: unknown outcome(s) {sorted(unknown)}; use better, equal, worse")
    table = {**DEFAULT_VALUES, **values}
    for key, v in table.items():
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"values[{key!r}] must be a finite number, got {v!r}")
    return {Outcome(k): float(v) for k, v in table.items()}


class ExemplarReward:
    """`translation.exemplar`: format-gated comparison with the row's exemplar.

    Options: judge ({"type": "metric", ...} default, {"type": "llm", "url"/"path", ...}, or a
    ready Judge object),
    values (outcome table), mode ("three_way" or "continuous"), scale (s of the continuous
    variant, in the judge's score units: chrF points for the metric judge),
    on_unparseable ("equal", "worse" or "raise": what an unparseable LLM verdict scores).
    """

    def __init__(
        self,
        judge: dict[str, Any] | str | Judge | None = None,
        values: dict[str, float] | None = None,
        mode: Literal["three_way", "continuous"] = "three_way",
        scale: float = 20.0,
        on_unparseable: Literal["equal", "worse", "raise"] = "equal",
    ):
        if mode not in ("three_way", "continuous"):
            raise ValueError(
                f"translation.exemplar: mode must be three_way or continuous, got {mode!r}"
            )
        if on_unparseable not in ("equal", "worse", "raise"):
            raise ValueError(
                f"on_unparseable must be equal, worse or raise, got {on_unparseable!r}"
            )
        if not scale > 0:
            raise ValueError(f"translation.exemplar: scale must be > 0, got {scale}")
        self.judge = build_judge(judge) if judge is None or isinstance(judge, dict | str) else judge
        if mode == "continuous" and not getattr(self.judge, "scores_quality", False):
            raise ValueError(
                "translation.exemplar: mode=continuous needs a judge that returns quality "
                "scores (the metric judge); the LLM judge only ranks"
            )
        self.values = outcome_values(values)
        self.mode, self.scale, self.on_unparseable = mode, float(scale), on_unparseable
        self.unparseable = 0  # over the run

    def request(self, sample: Sample, translation: str) -> JudgeRequest:
        name = "translation.exemplar"
        return JudgeRequest(
            source=row_text(sample, "source", name),
            translation=translation,
            exemplar=row_text(sample, "exemplar", name),
            reference=row_text(sample, "reference", name, required=False),
            source_lang=sample.meta.get("source_lang"),
            target_lang=sample.meta.get("target_lang"),
        )

    async def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        parsed = [parse_output(s.completion) for s in samples]
        for s in samples:  # a row without exemplar is a data error, whatever the format
            row_text(s, "exemplar", "translation.exemplar")
        todo = [i for i, p in enumerate(parsed) if p.valid]
        judged = await self.judge.judge(
            [self.request(samples[i], parsed[i].translation) for i in todo]
        )
        if len(judged) != len(todo):
            raise RuntimeError(f"judge returned {len(judged)} judgements for {len(todo)} requests")
        by_index = dict(zip(todo, judged, strict=True))
        out = []
        for i, p in enumerate(parsed):
            if not p.valid:
                out.append(_format_failure(p.reason))
                continue
            out.append(self.score(by_index[i]))
        return out

    def score(self, j: Judgement) -> RewardOutput:
        info: dict[str, Any] = {"format": True, **j.info}
        if j.unparseable or j.outcome is None:
            self.unparseable += 1
            info["unparseable"] = True
            if self.on_unparseable == "raise":
                raise RuntimeError(f"translation.exemplar: unparseable judge verdict ({j.info})")
            return RewardOutput(self.values[Outcome(self.on_unparseable)], info=info)
        info["outcome"] = j.outcome.value
        if self.mode == "continuous":
            if j.q_policy is None or j.q_exemplar is None:
                raise RuntimeError("continuous mode: the judge returned no quality scores")
            r = min(1.0, max(0.0, 0.5 + (j.q_policy - j.q_exemplar) / self.scale))
            return RewardOutput(r, info=info)
        return RewardOutput(self.values[j.outcome], info=info)

    def stats(self) -> dict[str, float]:
        return {**self.judge.stats(), "judge/unparseable_scored": float(self.unparseable)}


class MultilingualReward:
    """`translation.multilingual`: format × target language × metric (when a reference
    exists) × length-ratio band.

    Options: metric ("chrf" or "bleu"), min_confidence (language-id probability needed),
    length_tolerance (band = expected ratio ÷/× tolerance), length_bands ({"en-zh": [lo,
    hi]} overrides), require_format (False scores the text after any think block).
    """

    def __init__(
        self,
        metric: str = "chrf",
        min_confidence: float = 0.0,
        length_tolerance: float = 2.0,
        length_bands: dict[str, list[float]] | None = None,
        require_format: bool = True,
    ):
        self.metric = check_metric(metric)
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = min_confidence
        self.length_tolerance = length_tolerance
        self.length_bands = dict(length_bands or {})
        for key, band in self.length_bands.items():
            src, _, tgt = key.partition("-")
            check_language(src, f"length_bands key {key!r}: source language")
            check_language(tgt, f"length_bands key {key!r}: target language")
            if not (isinstance(band, list | tuple) and len(band) == 2):
                raise ValueError(f"length_bands[{key!r}] must be [low, high], got {band!r}")
        self.require_format = require_format

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        return [self.score(s) for s in samples]

    def score(self, sample: Sample) -> RewardOutput:
        name = "translation.multilingual"
        source = row_text(sample, "source", name)
        src = check_language(row_text(sample, "source_lang", name), "source_lang")
        tgt = check_language(row_text(sample, "target_lang", name), "target_lang")
        reference = row_text(sample, "reference", name, required=False)
        text, failed = _translation_text(sample.completion, self.require_format)
        if failed is None and not text:
            failed = _format_failure("empty output")
        if failed is not None:
            return failed
        found = identify(text)
        language_ok = found.language == tgt and found.confidence >= self.min_confidence
        low, high = length_band(src, tgt, self.length_tolerance, self.length_bands)
        ratio = len(text) / max(len(source), 1)
        length_ok = low <= ratio <= high
        quality = sentence_score(self.metric, text, [reference], tgt) / 100 if reference else 1.0
        score = float(language_ok) * float(length_ok) * quality
        info = {
            "format": True,
            "language": found.language,
            "language_confidence": found.confidence,
            "language_ok": language_ok,
            "length_ratio": ratio,
            "length_ok": length_ok,
            "quality": quality,
        }
        return RewardOutput(score, info=info)


class SentenceMetric:
    """Sentence-level sacrebleu metric of the translation against the reference, / 100.

    With `gate=True` (default) an output failing the format gate scores 0; with
    `gate=False` the text after any think block is scored as it is.
    """

    metric = "chrf"

    def __init__(self, gate: bool = True):
        self.gate = gate

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        return [self.score(s) for s in samples]

    def score(self, sample: Sample) -> RewardOutput:
        name = f"translation.{self.metric}"
        reference = row_text(sample, "reference", name)
        text, failed = _translation_text(sample.completion, self.gate)
        if failed is not None:
            return failed
        value = sentence_score(self.metric, text, [reference], sample.meta.get("target_lang"))
        # sacrebleu's BLEU can exceed 100 by a rounding error (100.00000000000004)
        return RewardOutput(min(value / 100, 1.0), info={self.metric: value})


class ChrF(SentenceMetric):
    """`translation.chrf`: sentence chrF (sacrebleu, beta 2, char order 6) / 100."""

    metric = "chrf"


class BLEU(SentenceMetric):
    """`translation.bleu`: sentence BLEU (sacrebleu, effective order) / 100."""

    metric = "bleu"


def _format_failure(reason: str) -> RewardOutput:
    return RewardOutput(0.0, info={"format": False, "format_error": reason})


def _translation_text(completion: str, gate: bool) -> tuple[str, RewardOutput | None]:
    """The translation in a completion: through the format gate (a failure is returned as
    a zero-score output), or, ungated, the text after any think block."""
    if not gate:
        return extract_translation(completion), None
    parsed = parse_output(completion)
    if not parsed.valid:
        return "", _format_failure(parsed.reason)
    return parsed.translation, None
