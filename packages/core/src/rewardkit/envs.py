"""The text-environment contract for multi-turn rollouts.

An environment is reset with a dataset row and returns the first observation (appended
to the prompt); the policy then writes an action, the environment answers with an
observation whose tokens are masked from the loss (completion_mask 0), until it says
done or a turn/token limit is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class StepResult:
    observation: str
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TextEnvironment(Protocol):
    def reset(self, row: dict[str, Any], seed: int | None = None) -> str:
        """Start an episode for a dataset row; return the first observation."""
        ...

    def step(self, action: str) -> StepResult:
        """Apply the policy's action text; return the environment's answer."""
        ...

    def state(self) -> Any:
        """A hashable description of the current state (used by SALT and GiGPO)."""
        ...
