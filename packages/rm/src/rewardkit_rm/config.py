"""RMConfig: every setting of a reward-model run, typed (pydantic), from YAML + overrides.

An unknown key is an error naming the closest known one; a wrong value names the key. The
loss and its options are checked when the config loads (before any model does).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataEntry(_Strict):
    """One data set: a JSONL file (`path`) or a verifier-built source (`source`, built on
    first use and cached as JSONL under `cache_dir`)."""

    path: str | None = None
    source: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # the source's build options
    max_train_pairs: int = Field(0, ge=0)  # 0 = all; else a seeded sample of the train pairs

    @model_validator(mode="after")
    def _one(self) -> DataEntry:
        if (self.path is None) == (self.source is None):
            raise ValueError("a data entry needs exactly one of `path` or `source`")
        return self


class RMConfig(_Strict):
    # model
    model: str = "tiny"  # "tiny", a packaged name (smollm2-135m-instruct) or a local folder
    tiny_model: dict[str, Any] = Field(default_factory=dict)
    kind: Literal["causal_head", "seqcls"] = "causal_head"
    pooling: Literal["last", "mean"] = "last"  # causal_head reads the last token, or the
    # mean over the response's tokens
    loss: str = "bt"
    loss_options: dict[str, Any] = Field(default_factory=dict)
    max_length: int = Field(512, ge=8)
    lora_r: int = Field(0, ge=0)  # LoRA when > 0
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str = "all-linear"
    lora_layers: int = Field(0, ge=0)  # adapters on the top N decoder layers only; 0 = all
    gradient_checkpointing: bool = False

    # data
    data: list[DataEntry] = Field(default_factory=list)
    test_fraction: float = Field(0.2, ge=0, le=1)  # problems held out (a row's own split wins)
    cache_dir: str = "runs/rm_data"

    # optimisation
    batch_size: int = Field(8, ge=1)  # pairs (or rated responses) per step
    max_steps: int = Field(100, ge=0)
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = 0.0
    lr_scheduler: Literal["constant", "linear", "cosine", "constant_with_warmup"] = "linear"
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = 1.0
    seed: int = 0

    # outputs
    output_dir: str = "runs/rm"
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(0, ge=0)  # steps; 0 = at the end only
    eval_pairs: int = Field(256, ge=0)  # held-out pairs scored at each evaluation
    save_every: int = Field(0, ge=0)  # checkpoint steps; 0 = only final/
    resume_from: str | None = None  # a checkpoint-N folder
    progress: bool = True

    def __init__(self, **data: Any):
        for key in data:
            if key not in type(self).model_fields:
                close = difflib.get_close_matches(str(key), list(type(self).model_fields), n=2)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"unknown config key {key!r}.{hint}")
        try:
            super().__init__(**data)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"invalid reward-model config: {errors}") from None
        from rewardkit_rm.losses import build_loss

        build_loss(self.loss, self.loss_options)  # fails now on a bad loss or option
        if self.loss == "gpm" and self.loss_options.get("gate") and self.kind != "causal_head":
            raise ValueError("gpm with gate: true needs kind: causal_head")
        if self.pooling != "last" and self.kind != "causal_head":
            raise ValueError("pooling: mean needs kind: causal_head (seqcls pools by itself)")

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | tuple = ()) -> RMConfig:
        data: dict[str, Any] = {}
        if path is not None:
            data = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(data, dict):
                raise ValueError(f"{path}: a config file must be a mapping")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} must look like key=value")
            target = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = yaml.safe_load(value)
        return cls(**data)

    def lora(self) -> dict[str, Any] | None:
        if self.lora_r == 0:
            return None
        return {
            "r": self.lora_r,
            "alpha": self.lora_alpha,
            "dropout": self.lora_dropout,
            "target_modules": self.lora_target_modules,
            "layers": self.lora_layers,
        }
