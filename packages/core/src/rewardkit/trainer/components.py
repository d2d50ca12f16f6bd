"""Resolve a config's names (task, rewards, estimator) and load the policy.

`resolve` runs before any model loads, so that a misspelt reward or estimator fails in a
second with a message naming it.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import ConfigDict, ValidationError, create_model

from rewardkit.registry import ADVANTAGES, GROUP_FILTERS, LOSSES, REWARDS, TASKS, TRANSFORMS
from rewardkit.rewards.base import SampleReward, build_reward
from rewardkit.rewards.scoring import WeightedReward
from rewardkit.tasks.base import RewardSpec, Task
from rewardkit.trainer.config import ConfigError, GRPOConfig, describe


@dataclass
class Components:
    task: Task
    rewards: list[WeightedReward]
    estimator: Any
    accuracy_reward: str  # name of the reward that decides held-out correctness
    loss: Any = None  # a registered PolicyLoss (None: the config's loss_type)
    group_filter: Any = None  # a registered group filter, or None


def reward_specs(config: GRPOConfig, task: Task) -> list[RewardSpec]:
    if config.rewards is None:
        if not task.rewards:
            raise ConfigError(f"task {config.task!r} has no default rewards; set `rewards`")
        return list(task.rewards)
    return [RewardSpec(r.name, r.weight, dict(r.options)) for r in config.rewards]


def resolve(config: GRPOConfig) -> Components:
    """Look every name up in its registry and build task, rewards, estimator, group filter
    and loss, checking their options (a task's against its typed signature)."""
    task_cls = TASKS.get(config.task)
    task = construct(task_cls, config.task_options, f"task_options of {config.task!r}", typed=True)
    if task.multi_turn and type(task).make_environment is Task.make_environment:
        raise ConfigError(f"task {config.task!r} is multi-turn but defines no make_environment")
    transforms = {r.name: r.transform for r in (config.rewards or []) if r.transform}
    rewards = []
    for spec in reward_specs(config, task):
        reward = construct(REWARDS.get(spec.name), spec.options, f"options of reward {spec.name!r}")
        if spec.name in transforms:
            t = transforms[spec.name]
            reward = construct(
                TRANSFORMS.get(t.name), t.options, f"options of transform {t.name!r}", first=reward
            )
        rewards.append(WeightedReward(spec.name, reward, spec.weight))
    estimator = construct(
        ADVANTAGES.get(config.advantage),
        config.advantage_options,
        f"advantage_options of {config.advantage!r}",
    )
    check_requires(config, task, estimator)
    group_filter = None
    if config.group_filter is not None:
        group_filter = construct(
            GROUP_FILTERS.get(config.group_filter),
            config.group_filter_options,
            f"group_filter_options of {config.group_filter!r}",
        )
    loss = LOSSES.get(config.loss_type)()
    return Components(task, rewards, estimator, rewards[0].name, loss, group_filter)


REQUIREMENTS = {
    "entropy": "the mean token entropy of each completion (batch.entropies)",
    "turns": "multi-turn rollouts (batch.turns): a task with an environment",
}


def check_requires(config: GRPOConfig, task: Task, estimator: Any) -> None:
    """An estimator's `requires` names inputs the trainer provides; anything else, or
    turns from a single-turn task, is an error."""
    requires = estimator_requires(estimator)
    unknown = requires - set(REQUIREMENTS)
    if unknown:
        raise ConfigError(
            f"advantage {config.advantage!r} requires {sorted(unknown)}, which the trainer "
            f"does not provide; it provides: {', '.join(sorted(REQUIREMENTS))}"
        )
    if "turns" in requires and not task.multi_turn:
        raise ConfigError(
            f"advantage {config.advantage!r} needs {REQUIREMENTS['turns']}, but task "
            f"{config.task!r} is single-turn"
        )


def construct(
    cls: Any, options: dict[str, Any], what: str, typed: bool = False, first: Any = None
) -> Any:
    """Build a registry entry with its options (after `first`, the reward a transform
    wraps). An unknown option is an error naming the closest known one; `typed`: the
    options are also checked and converted against the constructor's annotations."""
    signature_of = cls.fn if isinstance(cls, SampleReward) else cls
    if isinstance(cls, type | SampleReward):
        known, open_ended = _parameters(signature_of)
        wrapped = ("reward",) if first is not None else ()  # a transform's first argument
        own = ("sample", "context") if isinstance(cls, SampleReward) else ()
        known = [k for k in known if k not in wrapped + own]
        for key in options:
            if key not in known and not open_ended:
                close = difflib.get_close_matches(key, known, n=2)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"{what}: unknown option {key!r}.{hint} Known: {', '.join(known) or 'none'}"
                )
    if typed:
        options = _typed(cls, options, what)
    try:
        if first is not None:
            return cls(first, **options)
        return build_reward(cls, **options)
    except (TypeError, ValidationError) as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def _parameters(cls: Any) -> tuple[list[str], bool]:
    """Keyword parameter names of a constructor or function, and whether it takes **kwargs."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return [], True
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _typed(cls: type, options: dict[str, Any], what: str) -> dict[str, Any]:
    """The options validated and converted against the constructor's type hints."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - hints that do not resolve: no type check
        return options
    fields: dict[str, Any] = {}
    for p in inspect.signature(cls).parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name in options:
            fields[p.name] = (hints.get(p.name, Any), ...)
    model = create_model(
        f"{cls.__name__}Options",
        __config__=ConfigDict(arbitrary_types_allowed=True, extra="allow"),
        **fields,
    )
    try:
        checked = model(**options)
    except ValidationError as exc:
        raise ConfigError(f"{what}: {describe(exc)}") from None
    return {**options, **{k: getattr(checked, k) for k in fields}}


def load_policy(config: GRPOConfig) -> tuple[torch.nn.Module, Any]:
    """The policy and its tokenizer: "tiny" builds one from a config, a packaged model name
    (rewardkit.models) its converted folder, else a local path (or a hub id where the hub
    is reachable)."""
    dtype = getattr(torch, config.dtype)
    if config.model == "tiny":
        from rewardkit.tiny import build_tiny_model

        options = dict(config.tiny_model)
        options.setdefault("seed", config.seed)
        model, tokenizer = build_tiny_model(**options)
        model = model.to(dtype)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rewardkit.models import resolve_model

        path = resolve_model(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.lora_target_modules,
                task_type="CAUSAL_LM",
            ),
        )
    return model, tokenizer


def estimator_requires(estimator: Any) -> frozenset[str]:
    return frozenset(getattr(estimator, "requires", frozenset()))
