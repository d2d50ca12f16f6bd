"""The metric judge: ExTrans's comparison without a judge model (the embedded default).

With a reference, each translation is scored against it with a sacrebleu metric
(chrF or sentence BLEU): q_p = m(policy, ref), q_e = m(exemplar, ref). Without a
reference the exemplar is the only stand-in for a good translation, so the policy is
scored by its similarity to it, q_p = m(policy, exemplar), against q_e = m(exemplar,
exemplar) = 100: the policy can at best be equal. The outcome is equal when
|q_p - q_e| <= margin (`reference_free_margin` in the reference-free case), else better
or worse by the sign of q_p - q_e.
"""

from __future__ import annotations

import threading

from rewardkit_translation.judges.base import (
    Judgement,
    JudgeRequest,
    outcome_from_scores,
)
from rewardkit_translation.metrics import check_metric, sentence_score


class MetricJudge:
    scores_quality = True  # returns q_policy and q_exemplar (continuous variant)

    def __init__(
        self, metric: str = "chrf", margin: float = 2.0, reference_free_margin: float = 40.0
    ):
        self.metric = check_metric(metric)
        for name, value in (("margin", margin), ("reference_free_margin", reference_free_margin)):
            if value < 0:
                raise ValueError(f"metric judge: {name} must be >= 0, got {value}")
        self.margin = float(margin)
        self.reference_free_margin = float(reference_free_margin)
        self._lock = threading.Lock()
        self._counts = {"judged": 0, "reference_free": 0}

    def judge_one(self, r: JudgeRequest) -> Judgement:
        if not r.exemplar.strip():
            raise ValueError(f"metric judge: empty exemplar for source {r.source[:60]!r}")
        if r.reference is not None and r.reference.strip():
            q_p = sentence_score(self.metric, r.translation, [r.reference], r.target_lang)
            q_e = sentence_score(self.metric, r.exemplar, [r.reference], r.target_lang)
            margin, against = self.margin, "reference"
        else:
            q_p = sentence_score(self.metric, r.translation, [r.exemplar], r.target_lang)
            q_e = 100.0
            margin, against = self.reference_free_margin, "exemplar"
        with self._lock:
            self._counts["judged"] += 1
            self._counts["reference_free"] += against == "exemplar"
        outcome = outcome_from_scores(q_p, q_e, margin)
        return Judgement(
            outcome, q_p, q_e, info={"q_policy": q_p, "q_exemplar": q_e, "against": against}
        )

    async def judge(self, requests: list[JudgeRequest]) -> list[Judgement]:
        return [self.judge_one(r) for r in requests]

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {f"judge/{k}": float(v) for k, v in self._counts.items()}
