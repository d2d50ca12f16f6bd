"""Multi-turn code generation with execution feedback (VeRPO's multi-turn mode).

Up to `max_turns` attempts; after a failed attempt the policy sees which tests failed and
their messages (truncated); a trajectory stops as soon as an attempt passes every test.
`CodeFeedbackEnv` implements rewardkit's TextEnvironment contract for the trainer's
multi-turn rollouts; `rollout` drives it with any text policy and returns a `Sample`
whose turns the code.verpo reward and advantage read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rewardkit.envs import StepResult
from rewardkit.types import Sample, Turn
from rewardkit_code.execution import CodeExecutor, tests_of
from rewardkit_code.sandbox import TestOutcome


def format_feedback(
    outcomes: list[TestOutcome], max_failures: int = 5, max_chars: int = 1200
) -> str:
    """What the policy sees after a failed attempt: the failing tests and their messages."""
    failed = [(j, o) for j, o in enumerate(outcomes) if not o.passed]
    lines = [f"Your code passed {len(outcomes) - len(failed)} of {len(outcomes)} tests."]
    for j, o in failed[:max_failures]:
        msg = o.message if len(o.message) <= 200 else o.message[:197] + "..."
        lines.append(f"- test {j + 1}: {o.status}" + (f": {msg}" if msg else ""))
    if len(failed) > max_failures:
        lines.append(f"- ... and {len(failed) - max_failures} more failing tests")
    lines.append("Fix the code and answer with the whole corrected code in a ```python block.")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


class CodeFeedbackEnv:
    """TextEnvironment: each step runs the action's code against the row's tests."""

    def __init__(
        self, max_turns: int = 3, executor: CodeExecutor | None = None, **executor_options: Any
    ):
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.max_turns = max_turns
        self.executor = executor or CodeExecutor(**executor_options)
        self.row: dict[str, Any] | None = None
        self.turn = 0
        self.passed: tuple[int, ...] = ()

    def reset(self, row: dict[str, Any], seed: int | None = None) -> str:
        tests_of(row, where="CodeFeedbackEnv.reset")
        self.row, self.turn, self.passed = row, 0, ()
        return ""

    def step(self, action: str) -> StepResult:
        if self.row is None:
            raise RuntimeError("call reset(row) before step(action)")
        if self.turn >= self.max_turns:
            raise RuntimeError(f"the episode is over after {self.max_turns} turns")
        self.turn += 1
        outcomes = self.executor.outcomes([(action, self.row)])[0]
        self.passed = tuple(int(o.passed) for o in outcomes)
        solved = all(self.passed)
        done = solved or self.turn >= self.max_turns
        observation = "" if done else format_feedback(outcomes)
        return StepResult(
            observation=observation,
            reward=sum(self.passed) / len(self.passed),
            done=done,
            info={"passed": list(self.passed), "success": solved, "turn": self.turn},
        )

    def state(self) -> Any:
        return (self.turn, self.passed)


def rollout(
    policy: Callable[[str], str],
    row: dict[str, Any],
    env: CodeFeedbackEnv,
    prompt: str,
    tokenize: Callable[[str], list[int]],
    group: int = 0,
) -> Sample:
    """One multi-turn trajectory at the text level: `policy(context) -> action`; the
    context is the prompt followed by every earlier action and its feedback. Turn t spans
    its action tokens (mask 1) and the feedback tokens after them (mask 0)."""
    context = prompt + env.reset(row)
    ids: list[int] = []
    mask: list[int] = []
    turns: list[Turn] = []
    text = ""
    while True:
        action = policy(context)
        state = env.state()
        result = env.step(action)
        start = len(ids)
        a_ids, o_ids = tokenize(action), tokenize(result.observation)
        ids += a_ids + o_ids
        mask += [1] * len(a_ids) + [0] * len(o_ids)
        turns.append(
            Turn(
                start,
                len(ids),
                action=action,
                observation=result.observation,
                state=state,
                reward=result.reward,
                next_state=env.state(),
            )
        )
        text += action + result.observation
        context += action + result.observation
        if result.done:
            break
    return Sample(
        prompt=prompt,
        completion=text,
        completion_ids=ids,
        completion_mask=mask,
        group=group,
        meta=row,
        turns=turns,
    )
