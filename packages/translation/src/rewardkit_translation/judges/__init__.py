"""Judges that compare a policy translation with an exemplar (ExTrans, arXiv 2505.12996)."""

from rewardkit_translation.judges.base import (
    Judge,
    Judgement,
    JudgeRequest,
    Outcome,
    build_judge,
    outcome_from_scores,
)

__all__ = ["Judge", "JudgeRequest", "Judgement", "Outcome", "build_judge", "outcome_from_scores"]
