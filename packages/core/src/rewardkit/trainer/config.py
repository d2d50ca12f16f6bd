"""GRPOConfig: every setting of a run, typed (pydantic), loadable from YAML and `key=value`.

    settings = the task's default_config < the YAML file < the `key=value` overrides

merged first, then checked once: an unknown key is an error that suggests the closest known
one, a wrong type or value names the key and what is allowed, all before any model loads.
A config built in Python (`GRPOConfig(...)`) is checked the same way but gets no task
defaults: what you write is what runs.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A config key or value is invalid."""


# keys of older configs that now live elsewhere: the error says where
RENAMED = {
    "dynamic_sampling": "use `group_filter: zero_variance` (DAPO's dynamic sampling)",
    "max_turns": "the turn limit is the task's: set task_options.max_turns",
    "max_episode_tokens": "the episode's token limit is the task's: set "
    "task_options.max_episode_tokens",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TransformSpec(_Strict):
    """A reward transform wrapped around a reward: registry name and its options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class RewardEntry(_Strict):
    """One reward of the run: registry name, weight, constructor options, transform."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = Field(default_factory=dict)
    transform: TransformSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _transform_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("transform"), str):
            data = {**data, "transform": {"name": data["transform"]}}
        return data


class GRPOConfig(_Strict):
    # what to train, on what
    model: str = "tiny"  # a local path, a hub id (where reachable), or "tiny" (built from a config)
    tiny_model: dict[str, Any] = Field(default_factory=dict)  # options of rewardkit.tiny
    task: str = "core.arith"
    task_options: dict[str, Any] = Field(default_factory=dict)  # checked against the task
    rewards: list[RewardEntry] | None = None  # None: the task's rewards
    advantage: str = "grpo"
    advantage_options: dict[str, Any] = Field(default_factory=dict)

    # sampling
    prompts_per_step: int = Field(8, ge=1)
    num_generations: int = Field(8, ge=1)
    max_prompt_length: int = Field(256, ge=1)
    max_completion_length: int = Field(64, ge=1)  # a multi-turn task's limit per turn
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = 0
    stop_strings: list[str] = Field(default_factory=list)
    backend: Literal["hf", "vllm"] = "hf"

    # scoring
    reward_timeout: float = 60.0
    on_reward_error: Literal["raise", "zero"] = "raise"
    group_filter: str | None = None  # keep only some prompt groups and sample more, e.g.
    # zero_variance (DAPO's dynamic sampling) or math.accuracy_band (PRIME); rewardkit.filters
    group_filter_options: dict[str, Any] = Field(default_factory=dict)
    max_resample_rounds: int = Field(3, ge=0)

    # objective (TRL's definitions)
    loss_type: str = "dapo"  # a registered loss: grpo, bnpo, dr_grpo, dapo, gspo (rewardkit.losses)
    epsilon: float = Field(0.2, ge=0, lt=1)
    epsilon_high: float | None = Field(None, ge=0)  # None: same as epsilon
    beta: float = Field(0.0, ge=0)  # k3 KL to the reference model; 0 loads no reference model
    num_iterations: int = Field(1, ge=1)
    mask_truncated_completions: bool = False

    # optimisation
    learning_rate: float = 1e-5
    lr_scheduler: Literal["constant", "linear", "cosine", "constant_with_warmup"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.99)
    max_grad_norm: float = 1.0
    micro_batch_tokens: int = Field(8192, ge=1)  # token budget of one forward/backward
    packing: bool | None = None  # padding-free micro-batches; None: packed only where the
    # attention kernel is varlen (flash-attention), else right-padded (sdpa builds a dense
    # block-diagonal mask over a packed row: more work than padding short sequences)
    share_prompts: bool = False  # each distinct prompt runs once per micro-batch, its KV
    # cache shared by the group's completions (rewardkit.shared_prompt): fewer tokens when
    # prompts are long next to completions, as with chat templates
    max_steps: int = Field(100, ge=0)
    seed: int = 0
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    gradient_checkpointing: bool = False

    # PEFT (LoRA when lora_r > 0)
    lora_r: int = Field(0, ge=0)
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str = "all-linear"
    merge_lora_for_generation: bool = True  # generate with the adapters merged into the
    # base weights (restored exactly after); off, or where it cannot be done (ZeRO-3,
    # quantised bases, several adapters, DoRA: a logged reason), through the adapters

    # evaluation, logging, checkpoints
    eval_every: int = Field(0, ge=0)  # steps; 0 = only before and after training
    eval_size: int = Field(64, ge=0)
    eval_correct_threshold: float = 1.0  # a held-out sample is correct when the task's
    # accuracy reward scores at least this
    output_dir: str = "runs/rewardkit"
    report_to: list[Literal["jsonl", "tensorboard", "wandb"]] = Field(
        default_factory=lambda: ["jsonl", "tensorboard"]
    )
    log_completions_every: int = Field(10, ge=0)  # steps; 0 = never
    save_every: int = Field(0, ge=0)  # steps; 0 = only at the end
    resume_from: str | None = None  # a checkpoint folder, or "latest"
    progress: bool = True

    def __init__(self, **data: Any):
        _check_keys(data, type(self).model_fields, "config key")
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> GRPOConfig:
        if self.group_filter is not None and self.num_generations < 2:
            raise ValueError("group_filter needs num_generations >= 2")
        if self.share_prompts and self.packing:
            raise ValueError("share_prompts and packing are two micro-batch layouts: set one")
        return self

    @property
    def epsilon_low(self) -> float:
        return self.epsilon

    @property
    def epsilon_upper(self) -> float:
        return self.epsilon if self.epsilon_high is None else self.epsilon_high

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GRPOConfig:
        """The task's default_config under `data`, checked once."""
        return cls.load(data=data)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        data: dict[str, Any] | None = None,
    ) -> GRPOConfig:
        """task defaults < YAML file (or `data`) < `key=value` overrides (values parsed as
        YAML, dotted keys into mappings: task_options.digits=3), then one check."""
        merged: dict[str, Any] = dict(data or {})
        if path is not None:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
            merged.update(loaded)
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"override {item!r} must look like key=value")
            _set_dotted(merged, key.strip(), yaml.safe_load(value))
        _check_keys(merged, cls.model_fields, "config key")
        task = merged.get("task", cls.model_fields["task"].default)
        return cls(**{**task_defaults(task), **merged})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def task_defaults(task: str) -> dict[str, Any]:
    """The task's `default_config` (a class attribute), each key a known setting."""
    if not isinstance(task, str):
        raise ConfigError(f"task must be a registered task name, got {task!r}")
    from rewardkit.registry import TASKS

    defaults = dict(TASKS.get(task).default_config)
    unknown = set(defaults) - set(GRPOConfig.model_fields)
    if unknown:
        raise ConfigError(f"task {task!r}: default_config has unknown keys {sorted(unknown)}")
    return defaults


def _check_keys(data: dict[str, Any], known: Any, what: str) -> None:
    """Unknown keys are errors that name the closest known key."""
    for key in data:
        if key in RENAMED:
            raise ConfigError(f"config key {key!r} was replaced: {RENAMED[key]}")
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown {what} {key!r}.{hint}")


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """`task_options.digits=3` sets data["task_options"]["digits"]."""
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} is not a mapping")
    data[parts[-1]] = value


_TYPE_NAMES = {"str", "int", "float", "bool", "none", "list", "dict", "tuple", "TransformSpec"}


def _key_parts(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The config keys of an error location, without pydantic's union-member labels."""
    return tuple(
        p for p in loc if isinstance(p, int) or (p not in _TYPE_NAMES and "[" not in str(p))
    )


def _where(loc: tuple[Any, ...]) -> str:
    """('rewards', 0, 'transform', 'k') -> rewards[0].transform.k"""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_KNOWN_FIELDS = {
    "rewards": set(RewardEntry.model_fields),
    "transform": set(TransformSpec.model_fields),
}


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as one message per key, in rewardkit's words."""
    lines = []
    for err in exc.errors():
        loc = _key_parts(err["loc"])
        name, kind, got = _where(loc), err["type"], err.get("input")
        ctx = err.get("ctx", {})
        if kind == "extra_forbidden":
            parent = _where(loc[:-1])
            section = loc[-3] if len(loc) >= 3 and isinstance(loc[-2], int) else loc[-2]
            known = _KNOWN_FIELDS.get(str(section), set(GRPOConfig.model_fields))
            close = difflib.get_close_matches(str(loc[-1]), sorted(known), n=2)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            if section == "transform":
                hint += " A transform's own settings go under its options."
            lines.append(
                f"{parent}: unknown key {loc[-1]!r} (allowed: {', '.join(sorted(known))}).{hint}"
            )
        elif kind == "literal_error":
            lines.append(f"{name} must be one of {ctx.get('expected')}, got {got!r}")
        elif kind in ("greater_than_equal", "greater_than", "less_than", "less_than_equal"):
            op = {
                "greater_than_equal": ">=",
                "greater_than": ">",
                "less_than": "<",
                "less_than_equal": "<=",
            }[kind]
            bound = next(iter(ctx.values()))
            lines.append(f"{name} must be {op} {bound}, got {got!r}")
        elif kind.endswith(("_type", "_parsing")) and kind != "model_type":
            want = kind.split("_")[0]
            lines.append(f"{name} must be of type {want}, got {got!r}")
        elif kind == "missing":
            lines.append(f"{name} is required")
        elif kind == "value_error":
            lines.append(str(ctx.get("error", err["msg"])))
        else:
            lines.append(f"{name}: {err['msg']}, got {got!r}")
    return "; ".join(dict.fromkeys(lines))
