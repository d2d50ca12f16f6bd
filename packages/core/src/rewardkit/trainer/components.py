"""Resolve a config's names (task, rewards, estimator) and load the policy.

`resolve` runs before any model loads, so that a misspelt reward or estimator fails in a
second with a message naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.registry import ADVANTAGES, REWARDS, TASKS, TRANSFORMS
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.scoring import WeightedReward
from rewardkit.tasks.base import RewardSpec, Task
from rewardkit.trainer.config import ConfigError, GRPOConfig


@dataclass
class Components:
    task: Task
    rewards: list[WeightedReward]
    estimator: Any
    accuracy_reward: str  # name of the reward that decides held-out correctness


def reward_specs(config: GRPOConfig, task: Task) -> list[RewardSpec]:
    if config.rewards is None:
        if not task.rewards:
            raise ConfigError(f"task {config.task!r} has no default rewards; set `rewards`")
        return list(task.rewards)
    return [
        RewardSpec(r["name"], float(r.get("weight", 1.0)), dict(r.get("options") or {}))
        for r in config.rewards
    ]


def resolve(config: GRPOConfig) -> Components:
    """Look every name up in its registry and build task, rewards and estimator."""
    task_cls = TASKS.get(config.task)
    try:
        task = task_cls(**config.task_options)
    except TypeError as exc:
        raise ConfigError(f"task_options for {config.task!r}: {exc}") from exc
    config.apply_task_defaults(dict(getattr(task, "default_config", None) or {}))
    transforms = {
        r["name"]: r["transform"] for r in (config.rewards or []) if r.get("transform")
    }
    rewards = []
    for spec in reward_specs(config, task):
        try:
            reward = build_reward(REWARDS.get(spec.name), **spec.options)
        except TypeError as exc:
            raise ConfigError(f"options of reward {spec.name!r}: {exc}") from exc
        if spec.name in transforms:
            t = transforms[spec.name]
            t = {"name": t} if isinstance(t, str) else dict(t)
            transform_cls = TRANSFORMS.get(t.pop("name"))
            reward = transform_cls(reward, **t.get("options", {}))
        rewards.append(WeightedReward(spec.name, reward, spec.weight))
    estimator_cls = ADVANTAGES.get(config.advantage)
    try:
        estimator = estimator_cls(**config.advantage_options)
    except TypeError as exc:
        raise ConfigError(f"advantage_options for {config.advantage!r}: {exc}") from exc
    return Components(task, rewards, estimator, rewards[0].name)


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

