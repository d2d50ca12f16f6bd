"""`math.accuracy`: 1 when the completion's final answer equals the ground truth, else 0.

The spec's section 1: extract the final answer (`extract.py`: last `\\boxed{}`, `#### N`,
"The answer is"), then decide equivalence with `math-verify` (sympy-backed: fractions,
decimals, percentages, intervals, sets, LaTeX) under a per-call time limit (`verify.py`).
A missing answer, a parse failure or a timeout scores 0 with the reason in `info`; no
input makes it raise or hang. The ground truth is `sample.meta[answer_key]` (a string or a
number); a sample without it is an error naming the sample, not a silent 0.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rewardkit.types import RewardOutput, Sample
from rewardkit_math.extract import extract_answer
from rewardkit_math.verify import MathVerifier


def gold_text(value: object) -> str:
    """The ground truth as text: numbers are formatted, strings used as they are."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"the ground-truth answer must be a string or a number, got {value!r}")
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"the ground-truth answer must be a string or a number, got {type(value).__name__}"
    )


class MathAccuracy:
    """Batch reward: score 1.0 for an equivalent final answer, 0.0 otherwise.

    Options: `answer_key` (meta field with the ground truth, default "answer"), `timeout`
    (seconds per comparison, default 5), `max_chars` (longest answer parsed, default 1000),
    `float_rounding` (default 6), `num_workers` (verifier processes, default 2).
    `info` per sample: `extracted` (the answer found, cut to 200 characters), `method`
    (how it was found) and `reason` ("match", "mismatch", "no_answer", "timeout ...", ...).
    """

    def __init__(
        self,
        answer_key: str = "answer",
        timeout: float = 5.0,
        max_chars: int = 1000,
        float_rounding: int = 6,
        num_workers: int = 2,
    ):
        self.answer_key = answer_key
        self.verifier = MathVerifier(timeout, max_chars, float_rounding, num_workers)

    def score_text(self, completion: str, gold: object) -> RewardOutput:
        """Score one completion against one ground truth (also usable without a Sample)."""
        found = extract_answer(completion)
        if found.answer is None:
            reason = "no_answer" if found.method == "none" else found.method
            return RewardOutput(
                0.0, info={"extracted": None, "method": found.method, "reason": reason}
            )
        verdict = self.verifier(gold_text(gold), found.answer)
        info = {"extracted": found.answer[:200], "method": found.method, "reason": verdict.reason}
        return RewardOutput(1.0 if verdict.correct else 0.0, info=info)

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        golds = []
        for i, s in enumerate(samples):
            if self.answer_key not in s.meta:
                raise KeyError(
                    f"math.accuracy: sample {i} (group {s.group}) has no {self.answer_key!r} in "
                    f"meta; its keys are {sorted(s.meta)}"
                )
            golds.append(s.meta[self.answer_key])
        workers = min(self.verifier.num_workers, max(1, len(samples)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.score_text, [s.completion for s in samples], golds))
