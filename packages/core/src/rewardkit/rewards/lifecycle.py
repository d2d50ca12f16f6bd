"""A reward's life in a training run: what it is told, what it keeps, how it learns.

- Context. Rewards and transforms that take a `context` keyword argument get a
  `RewardContext`: the trainer step (optimizer steps done so far) and the phase, "train"
  (the rollouts the policy learns from) or "eval" (held-out rollouts). A schedule reads the
  step from it instead of counting its own calls, and a reward that adapts to its inputs
  (a running window) adapts on training batches only.
- State. A reward with `state_dict()` / `load_state_dict(state)` has its state saved in
  every checkpoint and restored on resume, so a resumed run scores like an uninterrupted
  one (a length-correction window, an online PRM and its optimizer).
- Learning. A reward with `learn(samples, scored, context)` learns from the train batch
  once per trainer step, after the batch is scored and filtered (the samples and scores
  the policy trains on); evaluation never calls it. If it sets `scores_after_learning =
  True`, the trainer scores the batch with it again after it learned (PRIME's "update the
  PRM, then score with it"). It reports what it learned through `stats()` (logged as
  `reward/<name>/<key>`).

Transforms (rewards that wrap rewards) list what they wrap with `wrapped()`; state,
learning and context reach the rewards inside through them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from rewardkit.types import Sample

Phase = Literal["train", "eval"]


@dataclass(frozen=True)
class RewardContext:
    """Where in training a batch is scored: `step` optimizer steps done, `phase`."""

    step: int = 0
    phase: Phase = "train"

    def __post_init__(self) -> None:
        if self.phase not in ("train", "eval"):
            raise ValueError(f"phase must be 'train' or 'eval', got {self.phase!r}")


@runtime_checkable
class LearnedReward(Protocol):
    """A reward that learns from the scored train batch (see the module docstring)."""

    def learn(self, samples: list[Sample], scored: Any, context: RewardContext) -> None: ...


@functools.lru_cache(maxsize=512)
def _signature_takes_context(fn: Any) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "context" in parameters


def takes_context(reward: Any) -> bool:
    """Whether `reward(samples, context=...)` is accepted."""
    declared = getattr(reward, "takes_context", None)  # e.g. a lifted per-sample function
    if isinstance(declared, bool):
        return declared
    plain = inspect.isfunction(reward) or inspect.ismethod(reward)
    return _signature_takes_context(reward if plain else type(reward).__call__)


def invoke(reward: Any, samples: list[Sample], context: RewardContext | None) -> Any:
    """`reward(samples)`, with the context when the reward takes one (a context of None
    is passed as it is: the reward's own default applies)."""
    if context is not None and takes_context(reward):
        return reward(samples, context=context)
    return reward(samples)


def wrapped(reward: Any) -> list[Any]:
    """The rewards a transform wraps (its `wrapped()`), else none."""
    inner = getattr(reward, "wrapped", None)
    return list(inner()) if callable(inner) else []


def walk(reward: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, reward) for `reward` and everything it wraps, depth first."""
    yield path, reward
    for i, inner in enumerate(wrapped(reward)):
        yield from walk(inner, f"{path}/{i}")


def reward_states(rewards: dict[str, Any]) -> dict[str, Any]:
    """{path: state} of every reward (wrapped ones included) that has a `state_dict`."""
    out = {}
    for name, reward in rewards.items():
        for path, node in walk(reward, name):
            if callable(getattr(node, "state_dict", None)):
                out[path] = node.state_dict()
    return out


def load_reward_states(rewards: dict[str, Any], states: dict[str, Any]) -> None:
    """Restore what `reward_states` saved; a mismatch (other rewards) is an error."""
    expected = {
        path
        for name, reward in rewards.items()
        for path, node in walk(reward, name)
        if callable(getattr(node, "load_state_dict", None))
    }
    if expected != set(states):
        raise ValueError(
            f"the checkpoint holds reward state for {sorted(states)}, but this run's stateful "
            f"rewards are {sorted(expected)}; resume with the rewards the run was saved with"
        )
    for name, reward in rewards.items():
        for path, node in walk(reward, name):
            if path in states:
                node.load_state_dict(states[path])


def learners(rewards: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(top-level name, path, reward) of every reward that learns."""
    return [
        (name, path, node)
        for name, reward in rewards.items()
        for path, node in walk(reward, name)
        if callable(getattr(node, "learn", None))
    ]
