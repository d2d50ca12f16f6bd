"""Shared episode bookkeeping for the built-in text environments.

Every built-in environment implements `rewardkit.envs.TextEnvironment`:

    reset(row, seed) -> first observation
    step(action text) -> StepResult(observation, reward, done, info)
    state() -> hashable state (used by SALT and GiGPO to merge identical states)

`TextEnv` does the part common to all of them: it parses the action text (see
`parsing.py`), feeds an invalid action back as the observation and counts it (with an
optional penalty), and ends the episode after `max_turns` turns.

Limits
------
* Turn limit: `max_turns`, enforced here; the step that reaches it returns done=True
  with ``info["truncated"] = True``.
* Observation: `observation="grid"` (default) shows the whole world (`render()`);
  `observation="local"` (grid world and FrozenLake) shows a compact view instead: the
  target's offset and what lies one step away in each direction (`local_view()`), e.g.
  "door: 2 up 1 right" and "up wall, down open, left edge, right open". The state, the
  rules and the rewards are the same; only the text the policy reads changes.
* Token limit: `max_episode_tokens` (None = none) is *not* enforced by the environment,
  which never sees tokens. The rollout loop honours it: it stops the episode once the
  completion (policy and observation tokens together) reaches that many tokens, and
  marks the sample truncated.

`info` of every step carries: ``success`` (the episode's goal was reached),
``invalid_action`` (this step's text could not be parsed), ``invalid_actions`` (the
running count), ``turns`` (the running count), ``truncated`` and ``action`` (the parsed
action name, or None).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

from rewardkit.envs import StepResult
from rewardkit_agents.envs.parsing import parse_action


class TextEnv(ABC):
    """Base class: subclasses define `actions`, `_reset`, `_apply`, `state` and `render`."""

    name: str = "env"
    actions: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    observations: tuple[str, ...] = ("grid",)  # the observation styles this env offers

    def __init__(
        self,
        max_turns: int = 20,
        invalid_action_penalty: float = 0.0,
        max_episode_tokens: int | None = None,
        observation: str = "grid",
    ):
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"max_turns must be a positive integer, got {max_turns!r}")
        if invalid_action_penalty < 0:
            raise ValueError(
                f"invalid_action_penalty is subtracted from the reward and must be >= 0, "
                f"got {invalid_action_penalty}"
            )
        if max_episode_tokens is not None and max_episode_tokens < 1:
            raise ValueError(f"max_episode_tokens must be positive, got {max_episode_tokens}")
        if observation not in self.observations:
            raise ValueError(
                f"{self.name}: observation must be one of {list(self.observations)}, "
                f"got {observation!r}"
            )
        self.observation = observation
        self.max_turns = max_turns
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.max_episode_tokens = max_episode_tokens
        self.turns = 0
        self.invalid_actions = 0
        self.success = False
        self.done = True  # no episode until reset()
        self._started = False

    # -- the TextEnvironment protocol -------------------------------------------------
    def reset(self, row: dict[str, Any], seed: int | None = None) -> str:
        """Start an episode for a dataset row; return the first observation."""
        if not isinstance(row, dict):
            raise TypeError(f"{self.name}: reset() needs a dataset row (dict), got {row!r}")
        self.turns = 0
        self.invalid_actions = 0
        self.success = False
        self.done = False
        self._started = True
        return self._reset(row, seed)

    def step(self, action: str) -> StepResult:
        """Apply the policy's action text; invalid text is fed back and counted."""
        if not self._started:
            raise RuntimeError(f"{self.name}: step() called before reset()")
        if self.done:
            raise RuntimeError(f"{self.name}: step() called after the episode ended; reset()")
        self.turns += 1
        parsed = parse_action(action, self.actions, self.aliases)
        if parsed.valid:
            observation, reward, terminated = self._apply(parsed.action)
        else:
            self.invalid_actions += 1
            observation = f"Invalid action: {parsed.error}.\n\n{self.view()}"
            reward, terminated = 0.0 - self.invalid_action_penalty, False
        truncated = not terminated and self.turns >= self.max_turns
        if truncated:
            observation += f"\n\nTurn limit ({self.max_turns}) reached. Episode over."
        self.done = terminated or truncated
        info = {
            "success": self.success,
            "invalid_action": not parsed.valid,
            "invalid_actions": self.invalid_actions,
            "turns": self.turns,
            "truncated": truncated,
            "action": parsed.action,
        }
        return StepResult(observation, float(reward), self.done, info)

    @abstractmethod
    def state(self) -> Hashable:
        """A hashable description of the current state."""

    # -- what subclasses implement ------------------------------------------------------
    @abstractmethod
    def _reset(self, row: dict[str, Any], seed: int | None) -> str:
        """Build the world for `row`; return the first observation."""

    @abstractmethod
    def _apply(self, action: str) -> tuple[str, float, bool]:
        """Apply a valid action: (observation, reward, terminated). Set self.success."""

    @abstractmethod
    def render(self) -> str:
        """The current world as text (no turn counters: equal states render equally)."""

    def local_view(self) -> str:
        """The compact view (`observation="local"`), for environments that offer one."""
        raise NotImplementedError(f"{self.name} has no local view")

    def view(self) -> str:
        """What the policy sees of the current world: `render()` or `local_view()`."""
        return self.local_view() if self.observation == "local" else self.render()

    def instructions(self) -> str:
        """The rules and the action format, for the task's prompt."""
        return (
            f"Answer each turn with exactly one action in the form <action>NAME</action>, "
            f"where NAME is one of: {', '.join(self.actions)}."
        )


def describe_local(
    target: str, agent: tuple[int, int], goal: tuple[int, int], around: dict[str, str]
) -> str:
    """The local view's text: "<target>: <rows> up|down <cols> left|right" (or "here"),
    then what lies one step away in each direction, e.g. "up wall, down open"."""
    dr, dc = goal[0] - agent[0], goal[1] - agent[1]
    offset = []
    if dr:
        offset.append(f"{abs(dr)} {'down' if dr > 0 else 'up'}")
    if dc:
        offset.append(f"{abs(dc)} {'right' if dc > 0 else 'left'}")
    neighbours = ", ".join(f"{move} {kind}" for move, kind in around.items())
    return f"{target}: {' '.join(offset) or 'here'}\n{neighbours}"


def require(row: dict[str, Any], key: str, kind: type | tuple[type, ...], env: str) -> Any:
    """row[key], checked for presence and type, with an error naming the environment."""
    if key not in row:
        raise KeyError(f"{env}: the dataset row has no {key!r} (row keys: {sorted(row)})")
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{env}: row[{key!r}] must be {kind}, got {value!r}")
    return value
