"""Rewards called from outside the trainer: reward sets named on a command line, samples
and reward outputs as JSON.

Shared by `rewardkit serve` (rewardkit.serve), `rewardkit replay` (rewardkit.replay) and
the verl adapter (rewardkit.interop). A reward set is written `NAME[:WEIGHT],...`, e.g.
`core.exact_answer,core.number_format:0.1`; each name is looked up in the
"rewardkit.rewards" registry and built with its options, as a run config would.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rewardkit.registry import REWARDS, TASKS
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.scoring import Scorer, WeightedReward
from rewardkit.tasks.base import RewardSpec
from rewardkit.types import RewardOutput, Sample, Turn


def parse_reward_set(text: str | Sequence[str] | Mapping[str, float]) -> list[RewardSpec]:
    """`"a,b:0.1"`, `["a", "b:0.1"]` or `{"a": 1, "b": 0.1}` as reward specs (weight 1 by
    default). Names must be unique; weights finite numbers."""
    if isinstance(text, Mapping):
        items = [(str(k), v) for k, v in text.items()]
    else:
        parts = text.split(",") if isinstance(text, str) else list(text)
        items = []
        for part in parts:
            if not isinstance(part, str):
                raise ValueError(f"a reward is named by a string, got {part!r}")
            name, sep, weight = part.strip().partition(":")
            items.append((name.strip(), weight.strip() if sep else 1.0))
    specs = []
    for name, weight in items:
        if not name:
            raise ValueError(f"empty reward name in {text!r}")
        try:
            value = float(weight)
        except (TypeError, ValueError):
            raise ValueError(
                f"weight of reward {name!r} must be a number, got {weight!r}"
            ) from None
        if isinstance(weight, bool) or not math.isfinite(value):
            raise ValueError(f"weight of reward {name!r} must be a finite number, got {weight!r}")
        specs.append(RewardSpec(name, value))
    names = [s.name for s in specs]
    if not specs:
        raise ValueError("no reward named")
    if len(set(names)) != len(names):
        raise ValueError(f"a reward is named twice in {names}")
    return specs


def task_reward_specs(task: str, **task_options: Any) -> list[RewardSpec]:
    """The default rewards (with weights and options) of a registered task."""
    task_obj = TASKS.get(task)(**task_options)
    if not task_obj.rewards:
        raise ValueError(f"task {task!r} has no default rewards; name the rewards instead")
    return [RewardSpec(s.name, s.weight, dict(s.options)) for s in task_obj.rewards]


def build_reward_set(
    specs: Iterable[RewardSpec], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[WeightedReward]:
    """Build each reward from the registry; `options[name]` adds to a spec's own options."""
    options = dict(options or {})
    rewards = []
    for spec in specs:
        opts = {**spec.options, **dict(options.pop(spec.name, {}) or {})}
        try:
            reward = build_reward(REWARDS.get(spec.name), **opts)
        except TypeError as exc:
            raise ValueError(f"options of reward {spec.name!r}: {exc}") from exc
        rewards.append(WeightedReward(spec.name, reward, spec.weight))
    if options:
        raise ValueError(f"options given for rewards not in the set: {sorted(options)}")
    return rewards


def groups_of(keys: Sequence[Any]) -> list[int]:
    """Group index per item: runs of equal keys share one (rollouts of one prompt are sent
    next to each other, as TRL, verl and OpenRLHF do)."""
    groups: list[int] = []
    for i, key in enumerate(keys):
        same = i > 0 and key == keys[i - 1]
        groups.append(groups[-1] if same else (groups[-1] + 1 if groups else 0))
    return groups


def sample_from_json(row: Mapping[str, Any], group: int) -> Sample:
    """A Sample from a JSON object with `completion` and optional `prompt`, `meta`,
    `completion_ids`, `completion_mask`, `turns`, `truncated` (validated by the caller)."""
    turns = row.get("turns")
    return Sample(
        prompt=row.get("prompt", ""),
        completion=row["completion"],
        completion_ids=list(row.get("completion_ids") or []),
        completion_mask=row.get("completion_mask"),
        group=group,
        meta=dict(row.get("meta") or {}),
        turns=None if turns is None else [Turn(**t) for t in turns],
        truncated=bool(row.get("truncated", False)),
    )


def output_to_json(output: RewardOutput) -> dict[str, Any]:
    """A reward output as JSON: score, info (per reward, e.g. per-test outcomes), and the
    token or step rewards when the reward gives them."""
    return jsonable(
        {
            "score": output.score,
            "info": output.info,
            "step_rewards": output.step_rewards,
            "step_ends": output.step_ends,
            "token_rewards": output.token_rewards,
        }
    )


def jsonable(value: Any) -> Any:
    """`value` with only JSON types: NaN/inf become None, tuples and sets lists, numpy and
    torch scalars and arrays numbers and lists, anything else its str()."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy / torch
    if callable(tolist):
        return jsonable(tolist())
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def parse_options(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`["math.accuracy.timeout=5", ...]` -> `{"math.accuracy": {"timeout": 5}}`; values are
    read as YAML scalars (numbers, booleans, null, strings)."""
    import yaml

    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, option = key.strip().rpartition(".")
        if not sep or not dot or not name or not option:
            raise ValueError(f"an option is written REWARD.KEY=VALUE, got {item!r}")
        options.setdefault(name, {})[option] = yaml.safe_load(value)
    return options


_SCORERS: dict[str, Scorer] = {}
_SCORERS_LOCK = threading.Lock()


def cached_scorer(
    specs: Sequence[RewardSpec],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: float | None = 60.0,
) -> Scorer:
    """A Scorer for a reward set, built once per process (rewards such as the sandbox or a
    reward model are expensive to build) and reused by later calls with the same set."""
    key = json.dumps(
        [[s.name, s.weight, s.options] for s in specs] + [options or {}, timeout],
        sort_keys=True,
        default=str,
    )
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = Scorer(build_reward_set(specs, options), timeout=timeout)
        return _SCORERS[key]
