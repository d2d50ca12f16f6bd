"""PRIME's accuracy-band prompt filter at the dataset level (offline).

PRIME (Cui et al. 2025, arXiv 2502.01456, section 3 "online prompt filtering") keeps only
prompts whose sampled accuracy lies in a band, (0.2, 0.8) by default, so that every kept
group has both right and wrong rollouts. Online, inside the GRPO step, that is the group
filter `math.accuracy_band` (`prime.AccuracyBand`, `group_filter: math.accuracy_band`).
What this module adds is the same filter *before* training: sample `num_samples`
completions per training prompt with a reference model (the initial policy), score them
with `math.accuracy`, and keep the prompts whose accuracy a satisfies low < a < high.

The tasks take it as an option (`task_options.accuracy_band`, train split only):

    accuracy_band: {model: PATH | tiny, low: 0.2, high: 0.8, num_samples: 8,
                    max_new_tokens: 256, temperature: 1.0, seed: 0, tiny_model: {...}}

The accuracies are those of the reference model, fixed once, not of the current policy:
a prompt that the policy masters during training stays in the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardkit.types import RewardOutput, Sample

Sampler = Callable[[list[str], int], list[list[str]]]  # prompts, n -> n completions each


def band_accuracies(
    rows: Sequence[dict[str, Any]],
    prompts: Sequence[str],
    sampler: Sampler,
    scorer: Callable[[list[Sample]], list[Any]],
    num_samples: int,
) -> list[float]:
    """Mean score of `num_samples` sampled completions per prompt (row = the meta)."""
    if num_samples < 1:
        raise ValueError(f"accuracy_band: num_samples must be >= 1, got {num_samples}")
    completions = sampler(list(prompts), num_samples)
    if len(completions) != len(prompts) or any(len(c) != num_samples for c in completions):
        raise ValueError(
            f"accuracy_band: the sampler must return {num_samples} completions for each of "
            f"{len(prompts)} prompts"
        )
    samples = [
        Sample(p, c, group=i, meta=dict(row))
        for i, (row, p, cs) in enumerate(zip(rows, prompts, completions, strict=True))
        for c in cs
    ]
    scores = [RewardOutput.coerce(v).score for v in scorer(samples)]
    return [
        sum(scores[i * num_samples : (i + 1) * num_samples]) / num_samples for i in range(len(rows))
    ]


def filter_by_accuracy(
    rows: Sequence[dict[str, Any]], accuracies: Sequence[float], low: float, high: float
) -> list[dict[str, Any]]:
    """The rows whose accuracy a satisfies low < a < high (PRIME's open band); each kept
    row gets `ref_accuracy`. Keeping nothing is an error naming the accuracies seen."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"accuracy_band must satisfy 0 <= low < high <= 1, got ({low}, {high})")
    kept = [
        {**r, "ref_accuracy": a} for r, a in zip(rows, accuracies, strict=True) if low < a < high
    ]
    if not kept:
        seen = sorted(set(round(a, 3) for a in accuracies))
        raise ValueError(
            f"accuracy_band ({low}, {high}) kept none of {len(rows)} prompts; the reference "
            f"model's accuracies were {seen[:10]}"
        )
    return kept


class HFSampler:
    """Sample completions with a transformers causal LM (a local path, or "tiny")."""

    def __init__(
        self,
        model: Any,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        seed: int = 0,
        tiny_model: dict[str, Any] | None = None,
        batch_size: int = 16,
    ):
        if model == "tiny":
            from rewardkit.tiny import build_tiny_model

            self.model, self.tokenizer = build_tiny_model(**(tiny_model or {}))
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.seed, self.batch_size = seed, batch_size

    @torch.no_grad()
    def __call__(self, prompts: list[str], n: int) -> list[list[str]]:
        out: list[list[str]] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for i in range(0, len(prompts), self.batch_size):
                chunk = prompts[i : i + self.batch_size]
                enc = self.tokenizer(chunk, return_tensors="pt", padding=True)
                ids = self.model.generate(
                    **enc,
                    do_sample=True,
                    temperature=self.temperature,
                    max_new_tokens=self.max_new_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                texts = self.tokenizer.batch_decode(
                    ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
                out += [texts[j * n : (j + 1) * n] for j in range(len(chunk))]
        return out


def apply_accuracy_band(
    rows: list[dict[str, Any]], prompt_fn: Callable[[dict[str, Any]], Any], options: dict[str, Any]
) -> list[dict[str, Any]]:
    """The task option `accuracy_band` (module docstring): sample, score, filter."""
    options = dict(options)
    allowed = {"model", "sampler", "low", "high", "num_samples", "max_new_tokens",
               "temperature", "seed", "tiny_model", "scorer"}  # fmt: skip
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(
            f"accuracy_band: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    sampler = options.get("sampler")
    if sampler is None:
        if "model" not in options:
            raise ValueError("accuracy_band needs `model` (a local path or 'tiny') or `sampler`")
        sampler = HFSampler(
            options["model"],
            int(options.get("max_new_tokens", 256)),
            float(options.get("temperature", 1.0)),
            int(options.get("seed", 0)),
            options.get("tiny_model"),
        )
    scorer = options.get("scorer")
    if scorer is None:
        from rewardkit_math.accuracy import MathAccuracy

        scorer = MathAccuracy(num_workers=1)
    prompts = [prompt_fn(r) for r in rows]
    if not all(isinstance(p, str) for p in prompts):
        raise ValueError("accuracy_band works on text prompts")
    acc = band_accuracies(rows, prompts, sampler, scorer, int(options.get("num_samples", 8)))
    return filter_by_accuracy(
        rows, acc, float(options.get("low", 0.2)), float(options.get("high", 0.8))
    )
