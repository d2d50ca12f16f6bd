"""GRPOConfig: every setting of a run, loadable from YAML and overridable with `key=value`.

Invalid configs fail here, before any model loads, with the offending key and the
allowed values.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml


class ConfigError(ValueError):
    """A config key or value is invalid."""


@dataclass
class GRPOConfig:
    # what to train, on what
    model: str = "tiny"  # a local path, a hub id (where reachable), or "tiny" (built from a config)
    tiny_model: dict[str, Any] = field(default_factory=dict)  # options of rewardkit.tiny
    task: str = "core.arith"
    task_options: dict[str, Any] = field(default_factory=dict)
    rewards: list[dict[str, Any]] | None = None  # [{name, weight, options, transform}] or task's
    advantage: str = "grpo"
    advantage_options: dict[str, Any] = field(default_factory=dict)

    # sampling
    prompts_per_step: int = 8
    num_generations: int = 8
    max_prompt_length: int = 256
    max_completion_length: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop_strings: list[str] = field(default_factory=list)
    backend: Literal["hf", "vllm"] = "hf"
    max_turns: int = 1  # > 1 for multi-turn tasks with an environment
    max_episode_tokens: int = 512  # token limit of a multi-turn completion

    # scoring
    reward_timeout: float = 60.0
    on_reward_error: Literal["raise", "zero"] = "raise"
    dynamic_sampling: bool = False  # DAPO: drop zero-variance groups and sample more
    max_resample_rounds: int = 3

    # objective (TRL's definitions)
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    epsilon: float = 0.2
    epsilon_high: float | None = None  # None: same as epsilon
    beta: float = 0.0  # k3 KL to the reference model; 0 loads no reference model
    num_iterations: int = 1
    mask_truncated_completions: bool = False

    # optimisation
    learning_rate: float = 1e-5
    lr_scheduler: Literal["constant", "linear", "cosine", "constant_with_warmup"] = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    max_grad_norm: float = 1.0
    micro_batch_tokens: int = 8192  # token budget of one forward/backward
    packing: bool | None = None  # padding-free micro-batches; None: packed only where the
    # attention kernel is varlen (flash-attention), else right-padded (sdpa builds a dense
    # block-diagonal mask over a packed row: more work than padding short sequences)
    share_prompts: bool = False  # each distinct prompt runs once per micro-batch, its KV
    # cache shared by the group's completions (rewardkit.shared_prompt): fewer tokens when
    # prompts are long next to completions, as with chat templates
    max_steps: int = 100
    seed: int = 0
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    gradient_checkpointing: bool = False

    # PEFT (LoRA when lora_r > 0)
    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str = "all-linear"

    # evaluation, logging, checkpoints
    eval_every: int = 0  # steps; 0 = only before and after training
    eval_size: int = 64
    eval_correct_threshold: float = 1.0  # a held-out sample is correct when the task's
    # accuracy reward scores at least this
    output_dir: str = "runs/rewardkit"
    report_to: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])
    log_completions_every: int = 10  # steps; 0 = never
    save_every: int = 0  # steps; 0 = only at the end
    resume_from: str | None = None  # a checkpoint folder, or "latest"
    progress: bool = True

    def __post_init__(self) -> None:
        # keys the user set (YAML / overrides); the task's default_config fills the others.
        # None (a config built in Python) means: apply no task defaults.
        self.explicit_keys: frozenset[str] | None = None
        self.validate()

    def apply_task_defaults(self, defaults: dict[str, Any]) -> None:
        """Settings that suit the task (its `default_config`), under what the user set."""
        if self.explicit_keys is None:
            return
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in defaults.items():
            if key not in names:
                raise ConfigError(f"the task's default_config has an unknown key {key!r}")
            if key not in self.explicit_keys:
                setattr(self, key, value)
        self.validate()

    # -- validation --------------------------------------------------------------------
    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and float in _members(_hints()[f.name]):
                try:  # YAML reads 5e-4 (no dot) as a string
                    setattr(self, f.name, float(value))
                except ValueError:
                    pass
            _check_type(f.name, getattr(self, f.name), _hints()[f.name])
        positive = (
            "prompts_per_step", "num_generations", "max_completion_length", "max_prompt_length",
            "num_iterations", "micro_batch_tokens", "max_turns", "max_episode_tokens",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps must be >= 0, got {self.max_steps}")
        if not 0 <= self.epsilon < 1:
            raise ConfigError(f"epsilon must be in [0, 1), got {self.epsilon}")
        if self.epsilon_high is not None and self.epsilon_high < 0:
            raise ConfigError(f"epsilon_high must be >= 0, got {self.epsilon_high}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.rewards is not None:
            for i, spec in enumerate(self.rewards):
                if not isinstance(spec, dict) or "name" not in spec:
                    raise ConfigError(f"rewards[{i}] must be a mapping with a 'name', got {spec!r}")
                extra = set(spec) - {"name", "weight", "options", "transform"}
                if extra:
                    raise ConfigError(
                        f"rewards[{i}] has unknown keys {sorted(extra)}; allowed: name, weight, "
                        f"options, transform"
                    )
        if self.share_prompts and self.packing:
            raise ConfigError("share_prompts and packing are two micro-batch layouts: set one")
        if self.dynamic_sampling and self.num_generations < 2:
            raise ConfigError("dynamic_sampling needs num_generations >= 2")
        bad = set(self.report_to) - {"jsonl", "tensorboard", "wandb"}
        if bad:
            raise ConfigError(f"report_to: unknown tracker(s) {sorted(bad)}; allowed: jsonl, tensorboard, wandb")

    @property
    def epsilon_low(self) -> float:
        return self.epsilon

    @property
    def epsilon_upper(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GRPOConfig:
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(f"unknown config key {key!r}.{hint}")
        config = cls(**data)
        config.explicit_keys = frozenset(data)
        return config

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] = ()) -> GRPOConfig:
        """YAML file (optional) then `key=value` overrides (values parsed as YAML)."""
        data: dict[str, Any] = {}
        if path is not None:
            text = Path(path).read_text()
            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {item!r} must look like key=value")
            _set_dotted(data, key.strip(), yaml.safe_load(value))
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """`task_options.digits=3` sets data["task_options"]["digits"]."""
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} is not a mapping")
    data[parts[-1]] = value


_HINTS: dict[str, Any] | None = None


def _hints() -> dict[str, Any]:
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(GRPOConfig)
    return _HINTS


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Enough type checking to turn YAML mistakes into messages naming the key."""
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(map(repr, get_args(hint)))
            raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")
        return
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in get_args(hint):
            try:
                _check_type(name, value, arg)
                return
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[-1])
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{name} must be null, got {value!r}")
        return
    base = origin or hint
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if base is Any:
        return
    if base is int and isinstance(value, bool) or not isinstance(value, base):
        raise ConfigError(f"{name} must be of type {_type_name(hint)}, got {value!r}")


def _members(hint: Any) -> tuple[Any, ...]:
    return get_args(hint) if get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
