"""`math.prm`: a discriminative process reward model scores every reasoning step.

Three kinds of model (spec section 2), each giving one score in [0, 1] per step:

- `causal`: a causal LM scored at a step tag, as in Math-Shepherd (Wang et al. 2024,
  arXiv 2312.08935): the input is the prompt followed by each step and the tag; the score
  of step k is softmax(logits[tag_k])[good] over the two candidate tokens (good, bad).
- `token`: a token-classification model (`*ForTokenClassification`, or a PRM head like
  Qwen2.5-Math-PRM's) read at the same tag positions: softmax over the labels, the
  `positive_label` probability (sigmoid when the model has a single label).
- `sequence`: a sequence-classification model run once per prefix "prompt + steps 1..k".

The scalar score aggregates the step scores: `min` (the weakest step, Lightman et al.
2023), `product` (all steps right), `last`, or `mean`. Steps are split on `delimiter` and
`step_ends` are the policy's completion tokens at which each step ends (`steps.py`, with
`policy_tokenizer`, by default the PRM's tokenizer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from rewardkit.types import Prompt, RewardOutput, Sample
from rewardkit_math.steps import Step, segment

Aggregation = Literal["min", "product", "last", "mean"]
AGGREGATIONS: tuple[str, ...] = ("min", "product", "last", "mean")


def aggregate(step_scores: Sequence[float], how: str) -> float:
    """Scalar score from step scores: min, product, last or mean (0.0 when there are none)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    if not step_scores:
        return 0.0
    if how == "min":
        return float(min(step_scores))
    if how == "product":
        return float(math.prod(step_scores))
    if how == "last":
        return float(step_scores[-1])
    return float(sum(step_scores) / len(step_scores))


def prompt_text(prompt: Prompt, tokenizer: Any) -> str:
    """Plain text of a prompt; chat messages go through the tokenizer's chat template."""
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in prompt) + "\n"


def _kind_of(model: Any) -> str:
    name = type(model).__name__
    if name.endswith("ForCausalLM"):
        return "causal"
    if name.endswith("ForTokenClassification"):
        return "token"
    if name.endswith("ForSequenceClassification"):
        return "sequence"
    raise ValueError(
        f"cannot tell how to score with a {name}; pass kind='causal', 'token' or 'sequence'"
    )


def _load(model: Any, kind: str) -> Any:
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    if not isinstance(model, str):
        return model
    if kind == "auto":
        raise ValueError("a model given as a path needs kind='causal', 'token' or 'sequence'")
    cls = {
        "causal": AutoModelForCausalLM,
        "token": AutoModelForTokenClassification,
        "sequence": AutoModelForSequenceClassification,
    }[kind]
    return cls.from_pretrained(model)


class PRMReward:
    """Batch reward: per-step PRM scores (`step_rewards`) and their aggregate (`score`).

    `model`: a transformers model or a local path; `tokenizer`: its tokenizer (loaded from
    the path when omitted); `kind`: auto | causal | token | sequence; `step_tag`: text
    appended after each step (causal and token kinds); `good_token` / `bad_token`: the
    candidate tokens of the causal kind; `positive_label`: the "step is right" label of
    the classifiers; `policy_tokenizer`: the tokenizer of `Sample.completion_ids`.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        kind: str = "auto",
        aggregation: Aggregation = "min",
        delimiter: str = "\n\n",
        step_tag: str = "\n\n",
        good_token: str = "+",
        bad_token: str = "-",
        positive_label: int = 1,
        policy_tokenizer: Any = None,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
    ):
        if kind not in ("auto", "causal", "token", "sequence"):
            raise ValueError(f"kind must be auto, causal, token or sequence, got {kind!r}")
        aggregate([], aggregation)  # validates the name
        if tokenizer is None:
            if not isinstance(model, str):
                raise ValueError("pass the PRM's tokenizer with a model object")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = _load(model, kind).to(device).eval()
        self.kind = _kind_of(self.model) if kind == "auto" else kind
        self.tokenizer = tokenizer
        self.policy_tokenizer = policy_tokenizer or tokenizer
        self.aggregation = aggregation
        self.delimiter = delimiter
        self.step_tag = step_tag
        self.positive_label = positive_label
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.tag_ids = self._encode(step_tag)
        if not self.tag_ids:
            raise ValueError(f"the step tag {step_tag!r} encodes to no tokens")
        if self.kind == "causal":
            self.candidates = [self._single_token(good_token), self._single_token(bad_token)]

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _single_token(self, text: str) -> int:
        ids = self._encode(text)
        if len(ids) != 1:
            raise ValueError(f"candidate token {text!r} must be one token, encodes to {ids}")
        return ids[0]

    # -- inputs ---------------------------------------------------------------------------
    def tagged_input(self, prompt: str, steps: list[str]) -> tuple[list[int], list[int]]:
        """(ids, positions): prompt, then each step followed by the tag; positions[k] is
        the last token of tag k, where step k is scored."""
        ids = self._encode(prompt)
        positions = []
        for step in steps:
            ids += self._encode(step) + self.tag_ids
            positions.append(len(ids) - 1)
        return ids, positions

    def _forward(self, rows: list[list[int]]) -> list[torch.Tensor]:
        """Logits of each row, (len(row), V or L) or (L,) for a sequence classifier, batched
        with right padding."""
        out: list[torch.Tensor] = []
        pad = self.tokenizer.pad_token_id or 0
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for j, r in enumerate(chunk):
                ids[j, : len(r)] = torch.tensor(r)
                mask[j, : len(r)] = 1
            with torch.no_grad():
                logits = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).logits.float()
            if logits.dim() == 2:  # sequence classification: one (L,) row per input
                out += list(logits.cpu())
            else:
                out += [logits[j, : len(r)].cpu() for j, r in enumerate(chunk)]
        return out

    def _probability(self, logits: torch.Tensor) -> torch.Tensor:
        """P(step is right) from the logits at scored positions, (K, V or L) -> (K,)."""
        if self.kind == "causal":
            return torch.softmax(logits[:, self.candidates], dim=-1)[:, 0]
        if logits.shape[-1] == 1:
            return torch.sigmoid(logits[:, 0])
        if not 0 <= self.positive_label < logits.shape[-1]:
            raise ValueError(
                f"positive_label {self.positive_label} is not one of the model's "
                f"{logits.shape[-1]} labels"
            )
        return torch.softmax(logits, dim=-1)[:, self.positive_label]

    def step_scores(self, prompt: str, steps: list[str]) -> list[float]:
        """One score in [0, 1] per step."""
        return self.step_scores_batch([(prompt, steps)])[0]

    def step_scores_batch(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        if self.kind == "sequence":
            rows, owners = [], []
            for n, (prompt, steps) in enumerate(items):
                for k in range(len(steps)):
                    rows.append(self._encode(prompt + self.delimiter.join(steps[: k + 1])))
                    owners.append(n)
            scores: list[list[float]] = [[] for _ in items]
            for n, logits in zip(owners, self._forward(rows), strict=True):
                scores[n].append(float(self._probability(logits[None])[0]))
            return scores
        tagged = [self.tagged_input(p, s) for p, s in items if s]
        logits = iter(self._forward([ids for ids, _ in tagged]))
        positions = iter([pos for _, pos in tagged])
        return [
            self._probability(next(logits)[next(positions)]).tolist() if s else [] for _, s in items
        ]

    # -- reward ---------------------------------------------------------------------------
    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        segmented: list[tuple[list[Step], list[int]]] = []
        items = []
        for s in samples:
            ids = s.completion_ids or None
            steps, ends = segment(s.completion, self.policy_tokenizer, ids, self.delimiter)
            segmented.append((steps, ends))
            items.append(
                (prompt_text(s.prompt, self.tokenizer), [st.text(s.completion) for st in steps])
            )
        outputs = []
        for (steps, ends), scores in zip(segmented, self.step_scores_batch(items), strict=True):
            if not steps:
                outputs.append(RewardOutput(0.0, info={"reason": "no_steps"}))
                continue
            outputs.append(
                RewardOutput(
                    aggregate(scores, self.aggregation),
                    step_rewards=scores,
                    step_ends=ends,
                    info={"num_steps": len(steps)},
                )
            )
        return outputs
