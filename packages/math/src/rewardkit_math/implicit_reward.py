"""`math.implicit_prm`: token, step and outcome rewards from an implicit PRM, optionally
trained online (PRIME) inside the GRPO loop.

See `implicit_prm.py` for the formulas (arXiv 2412.01981). Each sample gets
`token_rewards` r_t, `step_rewards` r^(k) at the steps' end tokens (steps split on
`delimiter`), and a `score` chosen by `score`:

- "min" / "sum": the best-of-N ranking score, the smallest step reward or their sum
  (the sum is q at the end of the last step);
- "outcome": q_T, the sequence-level β·log-ratio;
- "zero": 0, when the token rewards are consumed by a process estimator (PRIME) and the
  outcome comes from the verifier, so that nothing is counted twice.

Online update (PRIME, arXiv 2502.01456, Algorithm 1 lines "update the PRM with the
outcome-verifier labels") through the trainer's learned-reward hook (`learn`, see
`rewardkit.rewards.lifecycle`): once per trainer step, after the train batch is scored and
filtered (a group filter such as `math.accuracy_band` keeps PRIME's prompts), the PRM
takes one optimizer step of the CE loss (or DPO) on the kept samples, labelled by a
verifiable outcome reward (label = score > `label_threshold`; the run's own scores of
`label_reward` when it is one of the run's rewards, else `label_reward` is called, by
default `math.accuracy`). `online_update="before"` then has the trainer score the batch
again with the updated PRM (PRIME's default: the advantage uses the updated PRM);
`"after"` keeps the scores of the PRM as it was; `"none"` never learns. Evaluation
batches are scored, never learned from. The loss goes to `stats()`, which the trainer
logs as `reward/<name>/prm_loss`. The PRM's weights and optimizer state are the reward's
state (`state_dict`), saved in checkpoints and restored on resume.

`update_band=[low, high]` restricts the PRM update to the groups whose mean label lies
strictly inside it (`prime.accuracy_filter`); None (default) keeps all. A batch in which
the band keeps nothing is not learned from (counted in `prm_skipped_updates`).
"""

from __future__ import annotations

import copy
import threading
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
from rewardkit_math.prime import accuracy_filter
from rewardkit_math.steps import segment

ONLINE_MODES = ("none", "before", "after")


def _causal_lm(model: Any, tiny_model: dict[str, Any] | None) -> tuple[Any, Any]:
    """(model, tokenizer or None) from a model object, a local path or "tiny"."""
    if isinstance(model, str) and model == "tiny":
        from rewardkit.tiny import build_tiny_model

        return build_tiny_model(**(tiny_model or {}))
    if isinstance(model, str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), None
    return model, None


def _label_reward(label_reward: Any, options: dict[str, Any] | None) -> Any:
    if not isinstance(label_reward, str):
        if not callable(label_reward):
            raise ValueError(
                f"label_reward must be a reward name or a callable, got {label_reward!r}"
            )
        return label_reward
    from rewardkit.registry import REWARDS
    from rewardkit.rewards.base import build_reward

    return build_reward(REWARDS.get(label_reward), **(options or {}))


class ImplicitPRMReward:
    """Batch reward over an `ImplicitPRM` (given as `prm=`, or built from `model`,
    `ref_model` and `tokenizer`, each an object or a local path; `model="tiny"` builds
    `rewardkit.tiny`'s model with the `tiny_model` options, and the reference defaults to
    the same, so that πθ = π_ref at the start as in PRIME).

    Online options: `online_update` ("none" | "before" | "after"), `label_reward` (a
    REWARDS name or a batch reward, "math.accuracy"), `label_options`, `label_threshold`
    (0.5), `update_band` (None); `loss` ("ce" | "dpo") and `lr` (1e-6) of the PRM's
    optimizer when it is built here.
    """

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
        tiny_model: dict[str, Any] | None = None,
        online_update: Literal["none", "before", "after"] = "none",
        label_reward: Any = "math.accuracy",
        label_options: dict[str, Any] | None = None,
        label_threshold: float = 0.5,
        update_band: list[float] | tuple[float, float] | None = None,
        loss: Literal["ce", "dpo"] = "ce",
        lr: float = 1e-6,
    ):
        if score not in ("min", "sum", "outcome", "zero"):
            raise ValueError(f"score must be min, sum, outcome or zero, got {score!r}")
        if online_update not in ONLINE_MODES:
            raise ValueError(f"online_update must be one of {ONLINE_MODES}, got {online_update!r}")
        if update_band is not None:
            if len(update_band) != 2 or not 0.0 <= update_band[0] < update_band[1] <= 1.0:
                raise ValueError(
                    f"update_band must be [low, high] with 0 <= low < high <= 1, got {update_band}"
                )
            update_band = (float(update_band[0]), float(update_band[1]))
        if prm is None:
            if model == "tiny" and ref_model is None:
                ref_model = "tiny"
            if model is None or ref_model is None:
                raise ValueError("math.implicit_prm needs `model` and `ref_model` (or `prm`)")
            policy, tiny_tokenizer = _causal_lm(model, tiny_model)
            reference, _ = _causal_lm(ref_model, tiny_model)
            tokenizer = tokenizer or tiny_tokenizer
            if tokenizer is None:
                if not isinstance(model, str):
                    raise ValueError("pass the tokenizer with a model object")
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model)
            prm = ImplicitPRM(
                policy,
                reference,
                tokenizer,
                beta=beta,
                loss=loss,
                lr=lr,
                device=device,
                batch_size=batch_size,
            )
        self.prm = prm
        self.delimiter = delimiter
        self.score = score
        self.online_update = online_update
        self.label_threshold = label_threshold
        self.update_band = update_band
        self.labeler = (
            _label_reward(label_reward, label_options) if online_update != "none" else None
        )
        # the run's own scores serve as labels when the label reward is one of its rewards
        self.label_name = label_reward if isinstance(label_reward, str) else None
        self.scores_after_learning = online_update == "before"  # read by the trainer
        self._lock = threading.Lock()  # one update at a time, also if called concurrently
        self._stats: dict[str, float] = {"prm_updates": 0.0, "prm_skipped_updates": 0.0}

    # -- scoring --------------------------------------------------------------------------
    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        with self._lock:
            return self._score(samples)

    def _score(self, samples: list[Sample]) -> list[RewardOutput]:
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

    # -- the online update ----------------------------------------------------------------
    def labels(self, samples: list[Sample], scored: Any = None) -> list[float]:
        """Outcome labels l_i = [label_reward(y_i) > label_threshold] (the verifier's), from
        the run's scores of the label reward when `scored` has them."""
        if self.labeler is None:
            raise ValueError("labels need a label_reward (online_update is 'none')")
        raw = getattr(scored, "raw", {})
        if self.label_name in raw:
            values = list(raw[self.label_name])
        else:
            values = [RewardOutput.coerce(v).score for v in self.labeler(samples)]
        if len(values) != len(samples):
            raise ValueError(
                f"label_reward returned {len(values)} values for {len(samples)} samples"
            )
        return [float(v > self.label_threshold) for v in values]

    def learn(self, samples: list[Sample], scored: Any, context: Any) -> None:
        """The trainer's learned-reward hook: one PRM optimizer step on the train batch
        (never called on evaluation batches)."""
        if self.online_update == "none":
            return
        with self._lock:
            self._update(samples, self.labels(samples, scored))

    def _update(self, samples: list[Sample], labels: list[float]) -> None:
        """One PRM optimizer step on the samples with verifier labels (or a skip)."""
        keep = list(range(len(samples)))
        if self.update_band is not None and samples:
            inside = accuracy_filter(
                torch.tensor(labels), torch.tensor([s.group for s in samples]), *self.update_band
            )
            keep = inside.nonzero().flatten().tolist()
        if not keep:
            self._stats["prm_skipped_updates"] += 1
            return
        kept, kept_labels = [samples[i] for i in keep], [labels[i] for i in keep]
        loss = self.prm.train_step(kept, kept_labels, [s.group for s in kept])
        self._stats.update(
            prm_loss=loss,
            prm_label_mean=sum(kept_labels) / len(kept_labels),
            prm_update_samples=float(len(kept)),
            prm_updates=self._stats["prm_updates"] + 1,
        )

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The PRM's weights, its optimizer and the update counters."""
        optimizer = self.prm.optimizer
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.prm.model.state_dict().items()},
            "optimizer": None if optimizer is None else copy.deepcopy(optimizer.state_dict()),
            "stats": dict(self._stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.prm.model.load_state_dict(state["model"])
            if state["optimizer"] is not None:
                self.prm.ensure_optimizer().load_state_dict(state["optimizer"])
            self._stats = dict(state["stats"])

    def stats(self) -> dict[str, float]:
        """Logged by the trainer as reward/<name>/<key>: the last update's loss and label
        mean, and the numbers of updates done and skipped so far."""
        return dict(self._stats)
