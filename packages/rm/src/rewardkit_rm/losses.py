"""Reward-model losses (registry "rewardkit_rm.losses"), each with the head it needs.

A loss says how many outputs the head has (`out_dim`), turns head outputs into a scalar
reward (`reward`, used by rm.score and evaluation) and into a preference score between two
responses to the same prompt (`preference(a, b)`: > 0 when a is preferred; r(a) − r(b)
for scalar heads), and computes its training loss from a batch of head outputs.

Notation (spec): Δ = r(x, y_c) − r(x, y_r), σ the logistic function.

- `bt`         Bradley–Terry: L = −log σ(Δ).
- `bt_margin`  Llama-2 / HelpSteer2-Preference "scaled BT", with a per-pair strength
               m ≥ 0 from the data: L = −log σ(Δ − m) (`margin_mode="subtract"`) or
               L = −m · log σ(Δ) (`"scale"`, the default: what HelpSteer2-Preference
               reports best).
- `bt_smooth`  Secrets of RLHF II (label smoothing for noisy pairs):
               L = −(1−ε) log σ(Δ) − ε log σ(−Δ); pairs whose ensemble-vote strength
               (data field `strength`) is below `flip_below` are flipped (counted).
- `regression` HelpSteer2: one head per attribute, MSE against ratings scaled to [0, 1];
               reward = Σ_a w_a · prediction_a.
- `gpm`        General Preference Modeling: v ∈ ℝ^{2k}, ‖v‖ = 1, s(i, j) = v_iᵀ R v_j with
               R = block-diag of k blocks [[0, −1], [1, 0]] (optionally each block scaled
               by λ_l(x) ≥ 0 from a gate on the prompt); P(i ≻ j) = σ(s / τ);
               L = −log σ(s(y_c, y_r) / τ).
- `ordinal`    Ordinal probabilistic reward (OPRM, our reading of the abstract): p(· | x, y)
               over K ordered ratings; P(c ≻ r) = Σ_{i>j} p_c(i) p_r(j) + ½ Σ_i p_c(i) p_r(i);
               L = −log P(c ≻ r), plus −log Σ_{i ∈ region(level)} p(i) for each response
               annotated with a quality level (`regions` maps levels to rating ranges);
               reward = E[rating].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from rewardkit.registry import Registry

LOSSES = Registry("rm loss", "rewardkit_rm.losses", ("rewardkit_rm.losses",))


class PairLoss:
    """Base of the losses trained on (chosen, rejected) pairs with a scalar head.

    `__call__(chosen, rejected, batch)` gets head outputs (B, out_dim) and the batch's
    per-pair fields (tensors of B values: margin, strength, ...); returns the mean loss.
    """

    data = "pairs"  # what it trains on: "pairs" or "ratings"
    out_dim = 1
    uses_gate = False

    def reward(self, out: torch.Tensor) -> torch.Tensor:
        """(N, out_dim) head outputs -> (N,) scalar rewards."""
        return out[:, 0]

    def preference(self, a: torch.Tensor, b: torch.Tensor, **_: Any) -> torch.Tensor:
        """> 0 where a is preferred to b (same prompt): here r(a) − r(b)."""
        return self.reward(a) - self.reward(b)

    def stats(self) -> dict[str, float]:
        return {}


@LOSSES.register("bt")
class BradleyTerry(PairLoss):
    """L = −log σ(Δ) (the loss of TRL's RewardTrainer without a margin)."""

    def __call__(self, chosen, rejected, batch) -> torch.Tensor:
        return -F.logsigmoid(self.reward(chosen) - self.reward(rejected)).mean()


@LOSSES.register("bt_margin")
class BradleyTerryMargin(PairLoss):
    """Scaled BT with a per-pair strength m ≥ 0 (data field `margin`)."""

    def __init__(self, margin_mode: Literal["subtract", "scale"] = "scale"):
        if margin_mode not in ("subtract", "scale"):
            raise ValueError(
                f"bt_margin: margin_mode must be subtract or scale, got {margin_mode!r}"
            )
        self.margin_mode = margin_mode

    def __call__(self, chosen, rejected, batch) -> torch.Tensor:
        m = batch.get("margin")
        if m is None:
            raise ValueError("bt_margin needs a `margin` per pair in the data")
        m = m.to(chosen)
        if (m < 0).any():
            raise ValueError(f"bt_margin: margins must be >= 0, got {m.min().item()}")
        delta = self.reward(chosen) - self.reward(rejected)
        if self.margin_mode == "subtract":
            return -F.logsigmoid(delta - m).mean()
        return -(m * F.logsigmoid(delta)).mean()


@LOSSES.register("bt_smooth")
class BradleyTerrySmooth(PairLoss):
    """Label-smoothed BT with optional flipping of pairs the ensemble votes against."""

    def __init__(self, epsilon: float = 0.1, flip_below: float | None = None):
        if not 0.0 <= epsilon < 0.5:
            raise ValueError(f"bt_smooth: epsilon must be in [0, 0.5), got {epsilon}")
        self.epsilon = epsilon
        self.flip_below = flip_below
        self.flipped = 0
        self.pairs = 0

    def __call__(self, chosen, rejected, batch) -> torch.Tensor:
        delta = self.reward(chosen) - self.reward(rejected)
        if self.flip_below is not None:
            strength = batch.get("strength")
            if strength is None:
                raise ValueError(
                    "bt_smooth with flip_below needs a `strength` per pair in the data"
                )
            flip = strength.to(delta.device) < self.flip_below
            self.flipped += int(flip.sum())
            delta = torch.where(flip, -delta, delta)
        self.pairs += len(delta)
        eps = self.epsilon
        return -((1 - eps) * F.logsigmoid(delta) + eps * F.logsigmoid(-delta)).mean()

    def stats(self) -> dict[str, float]:
        return {"flipped_pairs": float(self.flipped), "pairs_seen": float(self.pairs)}


@LOSSES.register("regression")
class Regression:
    """HelpSteer2-style regression: one output per attribute, MSE against ratings scaled
    to [0, 1] with the declared `scale` (lo, hi); reward = Σ_a w_a · prediction_a."""

    data = "ratings"
    uses_gate = False

    def __init__(
        self,
        attributes: Sequence[str] = ("score",),
        scale: Sequence[float] = (0.0, 4.0),
        weights: dict[str, float] | None = None,
    ):
        self.attributes = list(attributes)
        if not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"regression: attributes must be distinct names, got {attributes}")
        lo, hi = (float(v) for v in scale)
        if not hi > lo:
            raise ValueError(f"regression: scale must be [low, high] with high > low, got {scale}")
        self.scale = (lo, hi)
        weights = weights if weights is not None else {a: 1.0 for a in self.attributes}
        unknown = set(weights) - set(self.attributes)
        if unknown:
            raise ValueError(f"regression: weights for unknown attributes {sorted(unknown)}")
        self.weights = torch.tensor([float(weights.get(a, 0.0)) for a in self.attributes])
        self.out_dim = len(self.attributes)

    def scaled(self, ratings: torch.Tensor) -> torch.Tensor:
        lo, hi = self.scale
        return (ratings - lo) / (hi - lo)

    def __call__(self, out: torch.Tensor, batch) -> torch.Tensor:
        target = self.scaled(batch["ratings"].to(out))
        return F.mse_loss(out, target)

    def reward(self, out: torch.Tensor) -> torch.Tensor:
        return out @ self.weights.to(out)

    def preference(self, a, b, **_: Any) -> torch.Tensor:
        return self.reward(a) - self.reward(b)

    def stats(self) -> dict[str, float]:
        return {}


def rotation_score(
    vi: torch.Tensor, vj: torch.Tensor, gate: torch.Tensor | None = None
) -> torch.Tensor:
    """GPM's s(i, j) = v_iᵀ R v_j for rows of (N, 2k) embeddings, R = block-diag of
    [[0, −1], [1, 0]] (each block times gate[:, l] when a gate (N, k) is given):
    Σ_l λ_l (v_i[2l+1] v_j[2l] − v_i[2l] v_j[2l+1]). Skew-symmetric: s(i, j) = −s(j, i)."""
    a_i, b_i = vi[:, 0::2], vi[:, 1::2]
    a_j, b_j = vj[:, 0::2], vj[:, 1::2]
    blocks = b_i * a_j - a_i * b_j  # (N, k)
    if gate is not None:
        blocks = blocks * gate
    return blocks.sum(-1)


@LOSSES.register("gpm")
class GeneralPreference:
    """General Preference Modeling (GPM): unit preference embeddings of dimension 2k and a
    skew-symmetric score, which can represent cyclic preferences that BT cannot.

    With `gate=True` the model adds a small gate on the prompt (the hidden state of the
    prompt's last token -> k non-negative λ_l(x), softplus) that scales each block. There is
    no scalar reward of a response alone: `reward` is undefined, and rm.score compares each
    completion with the others of its group (mean s).
    """

    data = "pairs"

    def __init__(self, k: int = 2, tau: float = 1.0, gate: bool = False):
        if k < 1 or tau <= 0:
            raise ValueError(f"gpm: need k >= 1 and tau > 0, got k={k}, tau={tau}")
        self.k, self.tau = k, float(tau)
        self.uses_gate = gate
        self.out_dim = 2 * k

    @staticmethod
    def embed(out: torch.Tensor) -> torch.Tensor:
        return F.normalize(out, dim=-1)

    def preference(self, a, b, gate: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        return rotation_score(self.embed(a), self.embed(b), gate) / self.tau

    def __call__(self, chosen, rejected, batch) -> torch.Tensor:
        gate = batch.get("gate")
        return -F.logsigmoid(self.preference(chosen, rejected, gate=gate)).mean()

    def reward(self, out: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "a GPM reward model has no scalar reward of one response; compare responses "
            "with preference(a, b) (rm.score compares each completion with its group)"
        )

    def stats(self) -> dict[str, float]:
        return {}


@LOSSES.register("ordinal")
class Ordinal:
    """An ordinal probabilistic reward over K ordered ratings 1..K (see the module
    docstring). `regions`: {level name: [first rating, last rating]} for quality-level
    annotations (pair fields `chosen_level` / `rejected_level`), weighted by
    `level_weight`."""

    data = "pairs"
    uses_gate = False

    def __init__(
        self,
        num_ratings: int = 10,
        regions: dict[str, Sequence[int]] | None = None,
        level_weight: float = 1.0,
    ):
        if num_ratings < 2:
            raise ValueError(f"ordinal: num_ratings must be >= 2, got {num_ratings}")
        self.K = self.out_dim = num_ratings
        self.regions: dict[str, tuple[int, int]] = {}
        for level, bounds in (regions or {}).items():
            lo, hi = (int(v) for v in bounds)
            if not 1 <= lo <= hi <= num_ratings:
                raise ValueError(
                    f"ordinal: region {level!r} must be [first, last] within 1..{num_ratings}, "
                    f"got {list(bounds)}"
                )
            self.regions[level] = (lo, hi)
        self.level_weight = float(level_weight)
        # M[i, j] = 1 if i > j, ½ if i == j: P(c ≻ r) = p_cᵀ M p_r
        i = torch.arange(num_ratings)
        self.M = (i[:, None] > i[None, :]).float() + 0.5 * torch.eye(num_ratings)

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        return out.float().softmax(-1)

    def win_probability(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pa, pb = self.probabilities(a), self.probabilities(b)
        return ((pa @ self.M.to(pa)) * pb).sum(-1)

    def preference(self, a, b, **_: Any) -> torch.Tensor:
        """P(a ≻ b) − ½: > 0 when a is preferred."""
        return self.win_probability(a, b) - 0.5

    def reward(self, out: torch.Tensor) -> torch.Tensor:
        ratings = torch.arange(1, self.K + 1, dtype=torch.float32, device=out.device)
        return self.probabilities(out) @ ratings

    def level_nll(self, out: torch.Tensor, levels: list[str | None]) -> torch.Tensor:
        """Σ over annotated responses of −log Σ_{i ∈ region(level)} p(i)."""
        logp = out.float().log_softmax(-1)
        total = out.new_zeros((), dtype=torch.float32)
        for row, level in enumerate(levels):
            if level is None:
                continue
            if level not in self.regions:
                raise ValueError(
                    f"ordinal: quality level {level!r} has no region; known: {sorted(self.regions)}"
                )
            lo, hi = self.regions[level]
            total = total - torch.logsumexp(logp[row, lo - 1 : hi], dim=-1)
        return total

    def __call__(self, chosen, rejected, batch) -> torch.Tensor:
        p = self.win_probability(chosen, rejected).clamp_min(1e-12)
        loss = -p.log().mean()
        levels_c = batch.get("chosen_level")
        levels_r = batch.get("rejected_level")
        if self.regions and (levels_c is not None or levels_r is not None):
            n = len(p)
            nll = self.level_nll(chosen, levels_c or [None] * n)
            nll = nll + self.level_nll(rejected, levels_r or [None] * n)
            loss = loss + self.level_weight * nll / n
        return loss

    def stats(self) -> dict[str, float]:
        return {}


def build_loss(name: str, options: dict[str, Any] | None = None):
    """A registered loss built with its options (an unknown name lists the known ones)."""
    cls = LOSSES.get(name)
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise ValueError(f"loss {name!r}: {exc}") from None
