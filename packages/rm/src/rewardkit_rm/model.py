"""The reward model: a transformer backbone and a head read at the last real token.

Two kinds of backbone:

- `causal_head` (default): the decoder of any causal LM (`AutoModel`, no LM head: the
  vocabulary projection is never computed) with a linear head of `out_dim` outputs (1 for
  BT, one per attribute for regression, 2k for GPM, K for ordinal) on the hidden state of
  the last token the attention mask keeps (right or left padding), or (`pooling: mean`) on
  the mean hidden state over the response's tokens, plus GPM's optional prompt gate on the
  prompt's last token;
- `seqcls`: an `AutoModelForSequenceClassification` with `num_labels = out_dim`, which
  pools by itself (the last token that is not `pad_token_id`, as TRL's RewardTrainer).

LoRA (peft) adapts the backbone; the head (and gate) always train in full. A trained RM
is saved as a folder: `rm_config.json` (kind, loss and its options, max_length),
`backbone/` (a plain transformers folder, LoRA merged in), `head.safetensors` (causal_head)
and the tokenizer; `load_reward_model(path)` reads it back.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG_FILE = "rm_config.json"
KINDS = ("causal_head", "seqcls")
POOLINGS = ("last", "mean")


@dataclass
class RMSpec:
    """What a saved reward model is: enough to rebuild its loss and read its outputs."""

    kind: str = "causal_head"
    loss: str = "bt"
    loss_options: dict[str, Any] = field(default_factory=dict)
    out_dim: int = 1
    gate_dim: int = 0  # GPM's prompt gate (k), 0 = none
    max_length: int = 512
    base_model: str = ""  # what it was trained from (informative)
    pooling: str = "last"  # causal_head: the last token, or the mean over the response


class RewardModel(nn.Module):
    """`forward(input_ids, attention_mask, prompt_last=None)` -> {"out": (N, out_dim),
    "gate": (N, k) or None}."""

    def __init__(self, backbone: nn.Module, spec: RMSpec, hidden_size: int | None = None):
        super().__init__()
        if spec.kind not in KINDS:
            raise ValueError(f"reward model kind must be one of {KINDS}, got {spec.kind!r}")
        if spec.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {spec.pooling!r}")
        if spec.kind == "seqcls" and spec.pooling != "last":
            raise ValueError("a seqcls backbone pools by itself: use pooling 'last'")
        self.spec = spec
        self.backbone = backbone
        self.head = self.gate = None
        if spec.kind == "causal_head":
            if hidden_size is None:
                raise ValueError("a causal_head reward model needs the backbone's hidden_size")
            self.head = nn.Linear(hidden_size, spec.out_dim, bias=False)
            nn.init.normal_(self.head.weight, std=hidden_size**-0.5)
            if spec.gate_dim:
                self.gate = nn.Linear(hidden_size, spec.gate_dim)
                nn.init.zeros_(self.gate.weight)
                nn.init.constant_(self.gate.bias, 0.5413)  # softplus(0.5413) = 1
        elif spec.gate_dim:
            raise ValueError("the GPM prompt gate needs kind='causal_head'")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        prompt_last: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        if self.spec.kind == "seqcls":
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            return {"out": out.logits.float(), "gate": None}
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        rows = torch.arange(len(input_ids), device=hidden.device)
        if self.spec.pooling == "mean":
            if prompt_last is None:
                raise ValueError("mean pooling needs prompt_last (the prompt's last token)")
            pooled = mean_over_response(hidden, attention_mask, prompt_last.to(hidden.device))
        else:
            pooled = hidden[rows, last_token(attention_mask)]
        out = self.head(pooled.to(self.head.weight.dtype))
        gate = None
        if self.gate is not None:
            if prompt_last is None:
                raise ValueError("the GPM gate needs prompt_last (the prompt's last token)")
            h = hidden[rows, prompt_last.to(hidden.device)].to(self.gate.weight.dtype)
            gate = nn.functional.softplus(self.gate(h))
        return {"out": out.float(), "gate": gate}


def last_token(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position the mask keeps in each row (left or right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(-1)


def mean_over_response(
    hidden: torch.Tensor, attention_mask: torch.Tensor, prompt_last: torch.Tensor
) -> torch.Tensor:
    """Mean hidden state over each row's response: the kept positions after `prompt_last`.
    When truncation cut the whole prompt away, `prompt_last` is 0 and the first kept token
    is left out too; a row with no position after `prompt_last` pools to zeros."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    keep = attention_mask.bool() & (positions[None, :] > prompt_last[:, None])
    keep = keep.to(hidden.dtype).unsqueeze(-1)
    return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)


# -- building -------------------------------------------------------------------------------


def load_tokenizer_and_backbone(
    model: str, kind: str, out_dim: int, tiny_model: dict[str, Any] | None = None, seed: int = 0
) -> tuple[nn.Module, Any, int]:
    """(backbone, tokenizer, hidden_size) for a config's `model`: "tiny" (rewardkit.tiny,
    built in code), a packaged name (`smollm2-135m-instruct`), or a local folder."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    if model == "tiny":
        from rewardkit.tiny import build_tiny_model

        causal, tokenizer = build_tiny_model(**{"seed": seed, **(tiny_model or {})})
        config = causal.config
        if kind == "seqcls":
            config = copy.deepcopy(config)
            config.num_labels = out_dim
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                backbone = AutoModelForSequenceClassification.from_config(config)
            backbone.model.load_state_dict(causal.model.state_dict())
        else:
            backbone = causal.model
        return backbone.float(), tokenizer, config.hidden_size
    from rewardkit.models import resolve_model

    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if kind == "seqcls":
        backbone = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=out_dim, dtype=torch.float32
        )
    else:
        backbone = AutoModel.from_pretrained(path, dtype=torch.float32)
    return backbone, tokenizer, backbone.config.hidden_size


def build_reward_model(
    model: str,
    spec: RMSpec,
    tiny_model: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    seed: int = 0,
    gradient_checkpointing: bool = False,
) -> tuple[RewardModel, Any]:
    """A fresh reward model (head initialised with `seed`) and its tokenizer; `lora`:
    LoRA options (r, alpha, dropout, target_modules, layers) or None for full fine-tuning.
    `layers: N` puts adapters on the top N decoder layers only: the layers below have
    nothing to train, so backward stops above them (about 6 -> 2 + 4·N/L units of work
    per token instead of 6)."""
    backbone, tokenizer, hidden = load_tokenizer_and_backbone(
        model, spec.kind, spec.out_dim, tiny_model, seed
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    backbone.config.pad_token_id = tokenizer.pad_token_id
    if gradient_checkpointing:
        backbone.gradient_checkpointing_enable()
    if lora:
        from peft import LoraConfig, get_peft_model

        options = {
            "r": 16,
            "alpha": 32,
            "dropout": 0.0,
            "target_modules": "all-linear",
            "layers": 0,
            **lora,
        }
        top = {}
        if options["layers"]:
            n_layers = backbone.config.num_hidden_layers
            first = max(0, n_layers - int(options["layers"]))
            top = {"layers_to_transform": list(range(first, n_layers)), "layers_pattern": "layers"}
            if options["target_modules"] == "all-linear":  # peft needs names with layers
                options["target_modules"] = sorted(
                    {
                        n.rsplit(".", 1)[-1]
                        for n, m in backbone.named_modules()
                        if isinstance(m, nn.Linear)
                        and n.rsplit(".", 1)[-1] not in ("score", "lm_head")
                    }
                )
        backbone = get_peft_model(
            backbone,
            LoraConfig(
                r=options["r"],
                lora_alpha=options["alpha"],
                lora_dropout=options["dropout"],
                target_modules=options["target_modules"],
                task_type="SEQ_CLS" if spec.kind == "seqcls" else None,
                **top,
            ),
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rm = RewardModel(backbone, spec, hidden)
    return rm, tokenizer


# -- saving and loading ---------------------------------------------------------------------


def save_reward_model(rm: RewardModel, tokenizer: Any, path: str | Path) -> Path:
    """Write `rm` as a folder `load_reward_model` reads (LoRA merged into a copy)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    backbone = rm.backbone
    if hasattr(backbone, "merge_and_unload"):  # a peft.PeftModel
        backbone = copy.deepcopy(backbone).merge_and_unload()
    backbone.save_pretrained(path / "backbone")
    tokenizer.save_pretrained(path)
    if rm.spec.kind == "causal_head":
        heads = {f"head.{k}": v for k, v in rm.head.state_dict().items()}
        if rm.gate is not None:
            heads |= {f"gate.{k}": v for k, v in rm.gate.state_dict().items()}
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in heads.items()}, path / "head.safetensors"
        )
    (path / CONFIG_FILE).write_text(json.dumps(asdict(rm.spec), indent=1))
    return path


def load_reward_model(path: str | Path, device: str | torch.device = "cpu"):
    """(RewardModel in eval mode on `device`, tokenizer, loss) from a saved folder."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit_rm.losses import build_loss

    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{path} is not a saved reward model (no {CONFIG_FILE}); give the final/ folder "
            "of `rewardkit-rm train` or a checkpoint's model/ folder"
        )
    spec = RMSpec(**json.loads((path / CONFIG_FILE).read_text()))
    tokenizer = AutoTokenizer.from_pretrained(path)
    cls = AutoModelForSequenceClassification if spec.kind == "seqcls" else AutoModel
    backbone = cls.from_pretrained(path / "backbone", dtype=torch.float32)
    rm = RewardModel(backbone, spec, backbone.config.hidden_size)
    if spec.kind == "causal_head":
        state = load_file(path / "head.safetensors")
        rm.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
        if rm.gate is not None:
            rm.gate.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("gate.")})
    loss = build_loss(spec.loss, spec.loss_options)
    return rm.to(device).eval(), tokenizer, loss
