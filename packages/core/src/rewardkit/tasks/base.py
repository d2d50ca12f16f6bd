"""The task contract: a dataset, a prompt format, default rewards and default config.

`rewardkit train --task code.humaneval` needs nothing else: the trainer asks the task for
its rows, turns each row into a prompt, and scores with the task's default rewards unless
the config names others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rewardkit.envs import TextEnvironment
from rewardkit.types import Prompt


@dataclass
class RewardSpec:
    """A reward as a config names it: registry name, weight and constructor options."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


class Task:
    """Subclass and register with `@TASKS.register("pkg.name")` or an entry point.

    The constructor's keyword arguments are the task's options (`task_options` in a
    config), checked against their type annotations before the task is built.

    A multi-turn task sets `multi_turn = True` and defines `make_environment(row)`: the
    trainer then plays episodes against the environments it makes, at most `max_turns`
    actions and `max_episode_tokens` completion tokens (policy and environment tokens)
    per episode; these limits are the task's settings (its options), nothing else's.

    Two optional hooks let a task take part in training beyond its data and rewards
    (`GRPOTrainer` calls them; the defaults do nothing):

    - `prepare_policy(model, tokenizer, config)`: called once in `GRPOTrainer.__init__`,
      right after the policy is loaded (or passed in) and before the reference-model copy
      and the optimizer are made, so whatever it returns is what GRPO trains and what the
      KL term is measured against. For example: add tokens and resize the embeddings, or
      run a supervised stage first.
    - `evaluate_policy(model, tokenizer)`: task-specific metrics of the current policy,
      called on the main process before the first GRPO step and after the last. The
      trainer logs them as `task/<name>` and writes `<output_dir>/task_eval.json` as
      {"before": {...}, "after": {...}}.
    """

    name: str = "task"
    rewards: ClassVar[list[RewardSpec]] = []
    default_config: ClassVar[dict[str, Any]] = {}  # trainer settings that suit this task
    multi_turn: bool = False  # True: episodes against `make_environment(row)`
    max_turns: int = 1  # a multi-turn task's action limit per episode
    max_episode_tokens: int = 512  # ... and its completion-token limit per episode

    def __init__(self, **options: Any):
        self.options = options

    def rows(self, split: str) -> list[dict[str, Any]]:
        """The dataset rows of a split ("train" or "test"); each is passed as Sample.meta."""
        raise NotImplementedError

    def prompt(self, row: dict[str, Any]) -> Prompt:
        """The prompt for one row: text, or chat messages."""
        return row["prompt"]

    def make_environment(self, row: dict[str, Any]) -> TextEnvironment:
        """A fresh environment for one episode of `row` (multi-turn tasks)."""
        raise NotImplementedError(f"task {self.name!r} is single-turn: it has no environment")

    def prepare_policy(self, model: Any, tokenizer: Any, config: Any) -> tuple[Any, Any]:
        """The (model, tokenizer) GRPO starts from; `config` is the run's GRPOConfig."""
        return model, tokenizer

    def evaluate_policy(self, model: Any, tokenizer: Any) -> dict[str, float]:
        """Task metrics of the policy (logged as `task/<name>`); none by default."""
        return {}
