"""Generated preference pairs with gold tool traces, to train Themis offline.

Calculator pairs ask for the value of a small expression; calendar pairs ask for a
weekday, a date n days later, or the days between two dates. The chosen answer is right;
the rejected one is subtly wrong (off by one, a neighbouring digit, the next weekday).
Each side gets a gold trace: a thought, the tool call, the observation the real tool
returns (the tool is called here, not copied), and a rationale comparing the observation
with that side's answer — the training signal of Themis (arXiv 2310.01045, §4.1).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from rewardkit_tools.themis.tools import Calculator, Calendar
from rewardkit_tools.themis.trace import ToolStep, Trace

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class PreferencePair:
    question: str
    chosen: str
    rejected: str
    trace_chosen: Trace
    trace_rejected: Trace
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "trace_chosen": self.trace_chosen.to_dict(),
            "trace_rejected": self.trace_rejected.to_dict(),
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferencePair:
        return cls(
            d["question"],
            d["chosen"],
            d["rejected"],
            Trace.from_dict(d["trace_chosen"]),
            Trace.from_dict(d["trace_rejected"]),
            d["kind"],
        )


def gold_trace(thought: str, tool, action_input: str, answer: str, right: bool) -> Trace:
    observation = tool(action_input)
    if right:
        rationale = f"The tool gives {observation}, which matches the answer {answer}."
    else:
        rationale = f"The tool gives {observation}, but the answer says {answer}, so it is wrong."
    return Trace([ToolStep(thought, tool.name, action_input, observation)], rationale)


def _near_miss(value: int, rng: random.Random) -> int:
    """A subtly wrong integer: off by one or ten, or one digit changed."""
    choice = rng.randrange(3)
    if choice == 0:
        return value + rng.choice([-1, 1])
    if choice == 1:
        return value + rng.choice([-10, 10])
    digits = list(str(abs(value)))
    i = rng.randrange(len(digits))
    digits[i] = str((int(digits[i]) + rng.choice([1, 9])) % 10)
    wrong = int("".join(digits)) * (1 if value >= 0 else -1)
    return wrong if wrong != value else value + 1


def calculator_pair(rng: random.Random) -> PreferencePair:
    a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(1, 50)
    op1, op2 = rng.choice(["+", "-", "*"]), rng.choice(["+", "-"])
    expression = f"{a} {op1} {b} {op2} {c}"
    calc = Calculator()
    right = int(calc(expression))
    wrong = _near_miss(right, rng)
    question = f"What is {expression}?"
    thought = "I need to compute the expression."
    return PreferencePair(
        question,
        str(right),
        str(wrong),
        gold_trace(thought, calc, expression, str(right), True),
        gold_trace(thought, calc, expression, str(wrong), False),
        "calculator",
    )


def calendar_pair(rng: random.Random) -> PreferencePair:
    cal = Calendar()
    start = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 10_000))
    kind = rng.randrange(3)
    if kind == 0:
        question = f"What day of the week is {start.isoformat()}?"
        action = f"weekday({start.isoformat()})"
        right = cal(action)
        wrong = WEEKDAYS[(WEEKDAYS.index(right) + rng.choice([1, 6])) % 7]
    elif kind == 1:
        n = rng.randint(2, 400)
        question = f"What date is {n} days after {start.isoformat()}?"
        action = f"add_days({start.isoformat()}, {n})"
        right = cal(action)
        wrong = (dt.date.fromisoformat(right) + dt.timedelta(days=rng.choice([-1, 1]))).isoformat()
    else:
        end = start + dt.timedelta(days=rng.randint(2, 900))
        question = f"How many days are there from {start.isoformat()} to {end.isoformat()}?"
        action = f"days_between({start.isoformat()}, {end.isoformat()})"
        right = cal(action)
        wrong = str(int(right) + rng.choice([-1, 1]))
    thought = "I should check the dates with the calendar."
    return PreferencePair(
        question,
        right,
        wrong,
        gold_trace(thought, cal, action, right, True),
        gold_trace(thought, cal, action, wrong, False),
        "calendar",
    )


def generate_pairs(
    n: int, seed: int = 0, kinds: tuple[str, ...] = ("calculator", "calendar")
) -> list[PreferencePair]:
    """n pairs, alternating over `kinds`, deterministic given the seed, no repeated question."""
    makers = {"calculator": calculator_pair, "calendar": calendar_pair}
    unknown = [k for k in kinds if k not in makers]
    if unknown or not kinds:
        raise ValueError(f"kinds must be drawn from {sorted(makers)}, got {kinds}")
    rng = random.Random(seed)
    pairs: list[PreferencePair] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 20 * n + 100:
            raise RuntimeError(f"could not generate {n} distinct pairs")
        pair = makers[kinds[len(pairs) % len(kinds)]](rng)
        if pair.question not in seen:
            seen.add(pair.question)
            pairs.append(pair)
    return pairs
