"""Rewards `code.pass_rate` (fraction of tests passed) and `code.binary` (1 if all pass).

Both score a sample's final attempt (its last turn's action, or its completion) and
share the sandbox and result cache with code.verpo through the CodeExecutor options.
"""

from __future__ import annotations

from typing import Any

from rewardkit.types import RewardOutput, Sample
from rewardkit_code.execution import CodeExecutor, outcome_counts
from rewardkit_code.verpo import attempts


class _FinalAttemptReward:
    def __init__(self, executor: CodeExecutor | None = None, **executor_options: Any):
        self.executor = executor or CodeExecutor(**executor_options)

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        outcomes = self.executor.outcomes([(attempts(s)[-1], s.meta) for s in samples])
        return [
            RewardOutput(
                self._score([o.passed for o in outs]),
                info={
                    "passed": sum(o.passed for o in outs),
                    "tests": len(outs),
                    "outcomes": outcome_counts(outs),
                },
            )
            for outs in outcomes
        ]

    def stats(self) -> dict[str, float]:
        """Execution counters of this reward's executor (see CodeExecutor.stats)."""
        return self.executor.stats()

    @staticmethod
    def _score(passed: list[bool]) -> float:
        raise NotImplementedError


class PassRate(_FinalAttemptReward):
    """code.pass_rate: passed tests / tests."""

    @staticmethod
    def _score(passed: list[bool]) -> float:
        return sum(passed) / len(passed)


class Binary(_FinalAttemptReward):
    """code.binary: 1.0 if every test passes, else 0.0."""

    @staticmethod
    def _score(passed: list[bool]) -> float:
        return float(all(passed))
