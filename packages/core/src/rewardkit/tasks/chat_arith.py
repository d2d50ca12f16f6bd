"""`core.chat_arith`: the arithmetic problems of `core.arith` asked as a chat question, for
instruct models.

The prompt is one user message, "What is 37 + 45? Answer with just the number.", rendered
through the tokenizer's chat template. Instruct models often answer with a sentence or a
worked line ("37 + 45 = 82"), so the reward `core.last_number` reads the last integer of
the reply: a reply is correct when that integer is the answer.
"""

from __future__ import annotations

import re
from typing import Any

from rewardkit.registry import REWARDS, TASKS
from rewardkit.rewards.base import per_sample
from rewardkit.tasks.arith import OPERATORS, Arithmetic
from rewardkit.tasks.base import RewardSpec
from rewardkit.types import RewardOutput, Sample

# an integer not glued to a letter or part of a decimal: "x2", "2x", "3.5" hold none;
# "81." at the end of a sentence is 81
_INTEGER = re.compile(r"(?<![\w.])-?\d+(?!\d|\.\d|[A-Za-z_])")
INSTRUCTION = "Answer with just the number."


@TASKS.register("core.chat_arith")
class ChatArithmetic(Arithmetic):
    """`core.arith`'s problems (same options, same disjoint splits) as chat messages:
    "What is a op b? <instruction>". Option `instruction` (default: "Answer with just the
    number.") is appended to the question."""

    name = "core.chat_arith"
    rewards = [RewardSpec("core.last_number", 1.0)]
    default_config = {"max_completion_length": 48, "stop_strings": []}

    def __init__(self, instruction: str = INSTRUCTION, **options: Any):
        self.instruction = instruction
        super().__init__(**options)

    def _row(self, a: int, op: str, b: int) -> dict[str, Any]:
        question = f"What is {a} {op} {b}? {self.instruction}".strip()
        return {"question": question, "answer": str(OPERATORS[op](a, b))}

    def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": row["question"]}]


def last_integer(text: str) -> str | None:
    """The last integer in `text` ("1,234" reads as 1234), or None."""
    found = _INTEGER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))
    return found[-1] if found else None


@REWARDS.register("core.last_number")
@per_sample(name="core.last_number")
def last_number(sample: Sample) -> RewardOutput:
    """1 when the last integer of the completion equals meta['answer'], else 0."""
    if "answer" not in sample.meta:
        raise KeyError("core.last_number needs the dataset row to have an 'answer'")
    predicted = last_integer(sample.completion)
    return RewardOutput(
        float(predicted is not None and int(predicted) == int(sample.meta["answer"])),
        info={"predicted": predicted},
    )
