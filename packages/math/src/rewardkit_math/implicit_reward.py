"""`math.implicit_prm`: token, step and outcome rewards from an implicit PRM.

See `implicit_prm.py` for the formulas (arXiv 2412.01981). Each sample gets
`token_rewards` r_t, `step_rewards` r^(k) at the steps' end tokens (steps split on
`delimiter`), and a `score` chosen by `score`:

- "min" / "sum": the best-of-N ranking score, the smallest step reward or their sum
  (the sum is q at the end of the last step);
- "outcome": q_T, the sequence-level β·log-ratio;
- "zero": 0, when the token rewards are consumed by a process estimator (PRIME) and the
  outcome comes from the verifier, so that nothing is counted twice.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from rewardkit.types import RewardOutput, Sample
from rewardkit_math.implicit_prm import (
    DEFAULT_BETA,
    ImplicitPRM,
    best_of_n_score,
    q_values,
    step_rewards,
)
from rewardkit_math.steps import segment


def _causal_lm(model: Any) -> Any:
    if isinstance(model, str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model)
    return model


class ImplicitPRMReward:
    """Batch reward over an `ImplicitPRM` (given as `prm=`, or built from `model`,
    `ref_model` and `tokenizer`, each an object or a local path)."""

    def __init__(
        self,
        model: Any = None,
        ref_model: Any = None,
        tokenizer: Any = None,
        beta: float = DEFAULT_BETA,
        delimiter: str = "\n\n",
        score: Literal["min", "sum", "outcome", "zero"] = "min",
        prm: ImplicitPRM | None = None,
        device: str = "cpu",
        batch_size: int = 8,
    ):
        if score not in ("min", "sum", "outcome", "zero"):
            raise ValueError(f"score must be min, sum, outcome or zero, got {score!r}")
        if prm is None:
            if model is None or ref_model is None:
                raise ValueError("math.implicit_prm needs `model` and `ref_model` (or `prm`)")
            if tokenizer is None:
                if not isinstance(model, str):
                    raise ValueError("pass the tokenizer with a model object")
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model)
            prm = ImplicitPRM(
                _causal_lm(model),
                _causal_lm(ref_model),
                tokenizer,
                beta=beta,
                device=device,
                batch_size=batch_size,
            )
        self.prm = prm
        self.delimiter = delimiter
        self.score = score

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        outputs = []
        for s, r in zip(samples, self.prm.token_rewards(samples), strict=True):
            q = q_values(torch.tensor(r, dtype=torch.float64))
            ids = s.completion_ids or None
            _, ends = segment(s.completion, self.prm.tokenizer, ids, self.delimiter)
            steps = step_rewards(q, ends) if ends else None
            outcome = float(q[-1]) if len(q) else 0.0
            if self.score in ("min", "sum"):
                score = best_of_n_score(steps or [], self.score)
            else:
                score = outcome if self.score == "outcome" else 0.0
            outputs.append(
                RewardOutput(
                    score,
                    token_rewards=r,
                    step_rewards=steps,
                    step_ends=ends if steps is not None else None,
                    info={"q_T": outcome, "num_steps": len(ends)},
                )
            )
        return outputs
