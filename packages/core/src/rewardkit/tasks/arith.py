"""`core.arith`: generated arithmetic problems with an exact-answer and a format reward.

Prompts are plain text such as "37+45=" and the expected completion is the number
followed by end-of-sequence, so a character-level tiny model can learn it on a CPU.
"""

from __future__ import annotations

import operator
import random
import re
from typing import Any

from rewardkit.registry import REWARDS, TASKS
from rewardkit.rewards.base import per_sample
from rewardkit.tasks.base import RewardSpec, Task
from rewardkit.types import RewardOutput, Sample

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_NUMBER = re.compile(r"-?\d+")


@TASKS.register("core.arith")
class Arithmetic(Task):
    """Problems `a op b=` with operands of `digits` digits, split into disjoint train/test.

    Options: digits (default 2), operators (default "+"), train_size, test_size, seed.
    """

    name = "core.arith"
    rewards = [RewardSpec("core.exact_answer", 1.0), RewardSpec("core.number_format", 0.1)]
    default_config = {"max_completion_length": 8, "stop_strings": []}

    def __init__(
        self,
        digits: int = 2,
        operators: str = "+",
        train_size: int = 2000,
        test_size: int = 200,
        seed: int = 1234,
    ):
        if digits < 1:
            raise ValueError(f"core.arith: digits must be >= 1, got {digits}")
        unknown = set(operators) - set(OPERATORS)
        if not operators or unknown:
            raise ValueError(
                f"core.arith: operators must be made of {''.join(OPERATORS)}, got {operators!r}"
            )
        super().__init__(digits=digits, operators=operators)
        self.digits, self.operators = digits, operators
        lo, hi = 10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1
        n_possible = (hi - lo + 1) ** 2 * len(operators)
        if train_size + test_size > n_possible:
            raise ValueError(
                f"core.arith: {train_size + test_size} problems asked but only {n_possible} exist"
            )
        rng = random.Random(seed)
        seen: set[tuple[int, str, int]] = set()
        problems = []
        while len(problems) < train_size + test_size:
            p = (rng.randint(lo, hi), rng.choice(operators), rng.randint(lo, hi))
            if p not in seen:
                seen.add(p)
                problems.append(p)
        self._splits = {
            "test": [self._row(*p) for p in problems[:test_size]],
            "train": [self._row(*p) for p in problems[test_size:]],
        }

    @staticmethod
    def _row(a: int, op: str, b: int) -> dict[str, Any]:
        return {"prompt": f"{a}{op}{b}=", "answer": str(OPERATORS[op](a, b))}

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in self._splits:
            raise ValueError(f"core.arith has splits 'train' and 'test', not {split!r}")
        return self._splits[split]


@REWARDS.register("core.exact_answer")
@per_sample(name="core.exact_answer")
def exact_answer(sample: Sample) -> RewardOutput:
    """1 when the first number in the completion equals meta['answer'], else 0."""
    if "answer" not in sample.meta:
        raise KeyError("core.exact_answer needs the dataset row to have an 'answer'")
    match = _NUMBER.search(sample.completion)
    predicted = match.group() if match else None
    return RewardOutput(
        float(predicted == str(sample.meta["answer"]).strip()), info={"predicted": predicted}
    )


@REWARDS.register("core.number_format")
@per_sample(name="core.number_format")
def number_format(sample: Sample) -> float:
    """1 when the completion is exactly one integer (surrounding spaces allowed), else 0."""
    return float(re.fullmatch(r"\s*-?\d+\s*", sample.completion) is not None)
