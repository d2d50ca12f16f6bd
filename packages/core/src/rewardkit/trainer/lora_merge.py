"""Generate from a LoRA policy with its adapters merged into the base weights.

Unmerged, every adapted linear layer of a peft model computes ``W x + s·B(A x)`` at every
decode step: two extra small matmuls, a scale and an add per layer and token, which cost
about 10% of SmolLM2-135M's generation time on one CPU thread
(bench/results/lora_generate_merge.json). Merged (Hu et al. 2021, "LoRA", §4.1: ``W' = W +
s·BA`` costs nothing at inference), generation runs the plain model.

`merged_lora(model)` is exact and drift-free: it does not add the delta into the base weight
and subtract it afterwards (peft's ``merge_adapter``/``unmerge_adapter``, which leave
``(W + Δ) − Δ`` rounded: an error that accumulates over steps, and is large in bfloat16).
Each adapted layer's weight tensor is swapped for a new tensor ``W + Δ`` (Δ from peft's own
``get_delta_weight``) while the adapters are disabled (peft's ``disable_adapter``), and the
original tensor, never written, is put back on exit, also after an exception. The cost is one
copy of the adapted weights while generating.

Where merging cannot be done this way, `merge_unsupported` says why and the caller generates
through the adapters: DeepSpeed ZeRO-3 (sharded parameters), quantised or non-``nn.Linear``
base layers, more than one adapter, LoRA variants (DoRA, ...) or LoRA biases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def is_peft_model(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def _lora_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def merge_unsupported(model: torch.nn.Module) -> str | None:
    """Why `merged_lora` cannot merge this peft model's adapters (None: it can)."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    if not is_peft_model(model):
        return "the policy is not a peft model"
    if len(model.peft_config) != 1:
        return f"{len(model.peft_config)} adapters (merging handles one)"
    config = next(iter(model.peft_config.values()))
    if getattr(config, "peft_type", None) != "LORA":  # PeftType is a str enum
        return f"a {config.peft_type} adapter, not LoRA"
    for extra in ("modules_to_save", "trainable_token_indices"):
        if getattr(config, extra, None):  # disable_adapter would switch these off as well
            return f"{extra} is set"
    if any(hasattr(p, "ds_id") or hasattr(p, "ds_status") for p in model.parameters()):
        return "DeepSpeed ZeRO-3 shards the parameters"
    if getattr(model, "is_quantized", False) or getattr(
        getattr(model, "config", None), "quantization_config", None
    ):
        return "the base model is quantised"
    layers = _lora_layers(model)
    if not layers:
        return "no LoRA layers"
    for layer in layers:
        name = type(layer).__name__
        if type(layer) is not LoraLinear:
            return f"a {type(layer).__module__}.{name} LoRA layer (only nn.Linear bases merge)"
        base = layer.get_base_layer()
        if type(base) is not torch.nn.Linear or not base.weight.dtype.is_floating_point:
            return f"a {type(base).__name__} base layer of dtype {base.weight.dtype}"
        if layer.merged:
            return "adapters already merged by the caller"
        if getattr(layer, "lora_variant", None):
            return f"a LoRA variant ({', '.join(map(str, layer.lora_variant))}), e.g. DoRA"
        if any(getattr(layer, "lora_bias", {}).values()):
            return "LoRA biases (lora_bias=True)"
    return None


@contextlib.contextmanager
def merged_lora(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Within the block, `model` computes with ``W + s·BA`` in each adapted layer's weight
    and its adapters disabled; on exit the original weight tensors are back, bit for bit.
    Call `merge_unsupported` first: this assumes a model it accepts."""
    swapped: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for layer in _lora_layers(model):
                weight = layer.get_base_layer().weight
                for name in layer.active_adapters:
                    if name in layer.lora_A:  # one adapter (merge_unsupported checks)
                        swapped.append((weight, weight.data))
                        delta = layer.get_delta_weight(name)
                        weight.data = weight.data + delta.to(weight.dtype)
        with model.disable_adapter():
            yield model
    finally:
        for weight, original in reversed(swapped):
            weight.data = original
