"""Math preference pairs from reasoning-gym: a correct worked answer against wrong ones.

Problems are reasoning-gym's `chain_sum` (a + b − c ... with small numbers by default).
The chosen answer works the sum left to right, one line per step, and ends with
`\\boxed{answer}`; a rejected answer makes one slip (a step's result off by ±1, ±2 or ±10)
and carries it on correctly to a wrong final answer. Both are checked with the dataset's
own `score_answer` on the answer that rewardkit_math's extractor reads from the text (as
`math.reasoning_gym_score` scores a policy): the chosen must score 1, a rejected one below 1
(verified wrong); a
slip that lands on the right answer is dropped and counted. Problems are keyed by their
expression (reasoning-gym repeats small ones), so a repeated question is one problem.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from rewardkit_rm.data import Pair

INSTRUCTION = "Work it out step by step. Put the final answer in \\boxed{}."
SLIPS = (1, -1, 2, -2, 10, -10)
DEFAULT_CONFIG = {"min_terms": 2, "max_terms": 4, "min_digits": 1, "max_digits": 2}


@dataclass
class MathReport:
    problems: int = 0
    repeated: int = 0  # the same expression again: one problem
    slips: int = 0
    slips_right: int = 0  # a slip that still gives the right answer: not used
    pairs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def terms(expression: str) -> tuple[int, list[tuple[str, int]]]:
    """'15 - 43 + 7' -> (15, [('-', 43), ('+', 7)])."""
    tokens = re.findall(r"[+-]|\d+", expression)
    if not tokens or not tokens[0].isdigit() or len(tokens) % 2 == 0:
        raise ValueError(f"not a chain sum: {expression!r}")
    first = int(tokens[0])
    rest = [(tokens[i], int(tokens[i + 1])) for i in range(1, len(tokens), 2)]
    return first, rest


def worked(expression: str, slip_step: int | None = None, slip: int = 0) -> tuple[str, int]:
    """(the worked answer, its final value); with `slip_step`, that step's result is off by
    `slip` and the later steps carry it on."""
    value, rest = terms(expression)
    lines = []
    for k, (op, n) in enumerate(rest):
        new = value + n if op == "+" else value - n
        if k == slip_step:
            new += slip
        lines.append(f"{value} {op} {n} = {new}")
        value = new
    lines.append(f"The answer is \\boxed{{{value}}}.")
    return "\n".join(lines), value


def math_pairs(
    size: int = 1500,
    seed: int = 0,
    max_rejected: int = 4,
    config: dict[str, Any] | None = None,
) -> tuple[list[Pair], MathReport]:
    import reasoning_gym

    from rewardkit_math.extract import extract_answer

    data = reasoning_gym.create_dataset(
        "chain_sum", size=size, seed=seed, **{**DEFAULT_CONFIG, **(config or {})}
    )

    def verified(text: str, entry: dict[str, Any]) -> float:
        found = extract_answer(text).answer
        return 0.0 if found is None else float(data.score_answer(found, entry))

    rng = random.Random(seed)
    report = MathReport()
    pairs, seen = [], set()
    for entry in data:
        expression = entry["metadata"]["expression"]
        if expression in seen:
            report.repeated += 1
            continue
        seen.add(expression)
        report.problems += 1
        chosen, value = worked(expression)
        if str(value) != str(entry["answer"]) or verified(chosen, entry) != 1.0:
            raise ValueError(f"chain_sum {expression!r}: worked answer {value} is not accepted")
        steps = len(terms(expression)[1])
        options = [(k, d) for k in range(steps) for d in SLIPS]
        rng.shuffle(options)
        rejected, finals = [], {value}
        for step, slip in options:
            if len(rejected) == max_rejected:
                break
            text, wrong = worked(expression, step, slip)
            report.slips += 1
            if wrong in finals:  # right again, or the same wrong answer as another
                report.slips_right += wrong == value
                continue
            if verified(text, entry) >= 1.0:
                report.slips_right += 1
                continue
            finals.add(wrong)
            rejected.append((text, step, slip))
        prompt = [{"role": "user", "content": f"{entry['question']}\n{INSTRUCTION}"}]
        for text, step, slip in rejected:
            pairs.append(
                Pair(
                    prompt=prompt,
                    chosen=chosen,
                    rejected=text,
                    problem_id=f"chain_sum:{expression}",
                    source="math.chain_sum",
                    meta={"kind": f"slip{slip:+d}", "step": step},
                )
            )
    report.pairs = len(pairs)
    return pairs, report
