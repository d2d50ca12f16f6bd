"""Built-in text environments and a factory that builds one from a dataset row.

A row names its environment (``row["env"]``) and may carry constructor options
(``row["env_options"]``, e.g. ``{"max_turns": 10, "is_slippery": True}``), so that an
environment, and any replay of an episode, can be rebuilt from the row alone.
"""

from __future__ import annotations

from typing import Any

from rewardkit_agents.envs.base import TextEnv
from rewardkit_agents.envs.gridworld import GridWorldEnv
from rewardkit_agents.envs.parsing import ParsedAction, parse_action
from rewardkit_agents.envs.toytext import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv

ENVIRONMENTS: dict[str, type[TextEnv]] = {
    "gridworld": GridWorldEnv,
    "frozenlake": FrozenLakeEnv,
    "taxi": TaxiEnv,
    "cliffwalking": CliffWalkingEnv,
}


def make_environment(row: dict[str, Any], **options: Any) -> TextEnv:
    """A fresh environment for `row`: ENVIRONMENTS[row["env"]](**row["env_options"], **options)."""
    if not isinstance(row, dict) or "env" not in row:
        raise KeyError(f"the row must name its environment in row['env'], got {row!r}")
    name = row["env"]
    if name not in ENVIRONMENTS:
        raise KeyError(f"unknown environment {name!r}; built-ins: {', '.join(ENVIRONMENTS)}")
    merged = {**row.get("env_options", {}), **options}
    try:
        return ENVIRONMENTS[name](**merged)
    except TypeError as exc:
        raise TypeError(f"environment {name!r} rejected options {sorted(merged)}: {exc}") from exc


__all__ = [
    "ENVIRONMENTS",
    "CliffWalkingEnv",
    "FrozenLakeEnv",
    "GridWorldEnv",
    "ParsedAction",
    "TaxiEnv",
    "TextEnv",
    "make_environment",
    "parse_action",
]
