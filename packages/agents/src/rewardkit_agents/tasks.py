"""Tasks `agents.gridworld` and `agents.frozenlake`: rows are seeds (or layouts).

Multi-turn contract with the trainer:

* ``task.rows(split)`` gives self-describing rows: ``env`` (environment name), ``seed``
  and layout fields, and ``env_options`` (constructor options such as ``max_turns``).
  Train rows use seeds 0..num_train-1, test rows seeds 1_000_000 + k: disjoint layouts.
* ``task.prompt(row)`` is the rules and the action format; the trainer appends the
  first observation, which ``env.reset(row, seed)`` returns.
* ``task.make_environment(row) -> TextEnvironment`` builds a fresh environment for one
  rollout (``multi_turn = True``).
* Limits: the task options ``max_turns`` (enforced by the environment and by the
  trainer's rollout) and ``max_episode_tokens`` (policy plus observation tokens), which
  the trainer reads from the task (``task.max_turns``, ``task.max_episode_tokens``).
* Default reward: ``agents.success`` (1 if the episode reached its goal; see rewards.py).
"""

from __future__ import annotations

from typing import Any

from rewardkit.tasks.base import RewardSpec, Task
from rewardkit_agents.envs import ENVIRONMENTS, TextEnv, make_environment

TEST_SEED_OFFSET = 1_000_000


class EnvironmentTask(Task):
    """A task whose rows are environment seeds; subclasses set `env_name`, `layout`."""

    env_name = ""
    multi_turn = True
    rewards = [RewardSpec("agents.success")]
    layout_options: dict[str, Any] = {}  # row fields and their defaults
    env_defaults: dict[str, Any] = {}  # constructor options and their defaults

    def __init__(self, num_train: int = 256, num_test: int = 64, **options: Any):
        super().__init__(num_train=num_train, num_test=num_test, **options)
        unknown = set(options) - set(self.layout_options) - set(self.env_defaults)
        if unknown:
            raise TypeError(
                f"{self.name}: unknown options {sorted(unknown)}; layout options "
                f"{sorted(self.layout_options)}, environment options {sorted(self.env_defaults)}"
            )
        for label, n in (("num_train", num_train), ("num_test", num_test)):
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"{self.name}: {label} must be a non-negative integer, got {n!r}")
        self.num_train, self.num_test = num_train, num_test
        self.layout = {k: options.get(k, v) for k, v in self.layout_options.items()}
        self.env_options = {k: options.get(k, v) for k, v in self.env_defaults.items()}
        self.max_turns = self.env_options["max_turns"]
        self.max_episode_tokens = self.env_options["max_episode_tokens"]
        ENVIRONMENTS[self.env_name](**self.env_options)  # fail now on bad options

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split == "train":
            seeds = range(self.num_train)
        elif split == "test":
            seeds = range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + self.num_test)
        else:
            raise ValueError(f"{self.name}: unknown split {split!r}; use 'train' or 'test'")
        return [
            {"env": self.env_name, "seed": s, **self.layout, "env_options": dict(self.env_options)}
            for s in seeds
        ]

    def make_environment(self, row: dict[str, Any]) -> TextEnv:
        """A fresh environment for one rollout of `row` (call reset(row, seed) on it)."""
        if row.get("env") != self.env_name:
            raise ValueError(f"{self.name}: row is for environment {row.get('env')!r}")
        return make_environment(row)

    def prompt(self, row: dict[str, Any]) -> str:
        return (
            self.make_environment(row).instructions()
            + " The current state is shown after each of your actions."
        )


class GridWorldTask(EnvironmentTask):
    """Key-and-door grid navigation (`envs.gridworld`)."""

    name = "agents.gridworld"
    env_name = "gridworld"
    layout_options = {"size": 5, "wall_density": 0.2, "key": True}
    env_defaults = {
        "max_turns": 15,
        "invalid_action_penalty": 0.0,
        "max_episode_tokens": 1024,
        "observation": "grid",
    }


class FrozenLakeTask(EnvironmentTask):
    """Gymnasium FrozenLake on random solvable maps, one per seed (`envs.toytext`)."""

    name = "agents.frozenlake"
    env_name = "frozenlake"
    layout_options = {"size": 4, "p": 0.8}
    env_defaults = {
        "max_turns": 20,
        "is_slippery": False,
        "invalid_action_penalty": 0.0,
        "max_episode_tokens": 1024,
        "observation": "grid",
    }
