"""Reward transforms (registry "rewardkit.transforms"): batch rewards that wrap other
rewards and reshape their scores.

Each transform is a sync batch `Reward`: it calls the reward(s) it wraps (awaiting an async
one), checks what they return, and answers one `RewardOutput` per sample whose `score` is
the transformed reward and whose `info` keeps the raw score(s). A transform of one reward
passes that reward's token and step rewards through (potential shaping rewrites the step
rewards); a transform of several rewards (multi-reward LSC, ensembles) combines outcome
scores only. A wrapped reward is a `Reward` object or a name in the REWARDS registry.
"""

from __future__ import annotations

import inspect
import math
import statistics
import threading
from collections import deque
from collections.abc import Callable
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from rewardkit.registry import REWARDS, TRANSFORMS
from rewardkit.rewards.base import Reward, build_reward
from rewardkit.rewards.calling import check_outputs, run_sync
from rewardkit.rewards.lifecycle import RewardContext, invoke
from rewardkit.types import RewardOutput, Sample

MAX_PAR_REFERENCES = 10


# -- helpers --------------------------------------------------------------------------------


def resolve_reward(reward: Reward | str) -> Reward:
    """A reward object as it is, or a registry name built with no options."""
    if isinstance(reward, str):
        return build_reward(REWARDS.get(reward))
    if not callable(reward):
        raise TypeError(f"expected a reward (callable or registry name), got {reward!r}")
    return reward


def reward_name(reward: Any) -> str:
    return str(getattr(reward, "name", None) or getattr(reward, "__name__", type(reward).__name__))


def call_reward(
    reward: Reward, samples: list[Sample], who: str, context: RewardContext | None = None
) -> list[RewardOutput]:
    """Score `samples` with a wrapped reward, sync or async, passing the context on; one
    finite output per sample."""
    values = invoke(reward, samples, context)
    if inspect.isawaitable(values):
        values = run_sync(values)
    return check_outputs(values, samples, f"{who}: wrapped reward {reward_name(reward)!r}")


def reference_scores(sample: Sample, key: str, i: int, who: str) -> list[float]:
    """The reference rewards stored in sample.meta[key] (a number or a list of numbers)."""
    if key not in sample.meta:
        raise ValueError(
            f"{who}: sample {i} (group {sample.group}) has no reference scores: "
            f"meta[{key!r}] is missing (meta keys: {sorted(sample.meta)})"
        )
    raw = sample.meta[key]
    refs = [raw] if isinstance(raw, int | float) else list(raw)
    if not refs:
        raise ValueError(f"{who}: sample {i}: meta[{key!r}] is empty")
    try:
        refs = [float(r) for r in refs]
    except (TypeError, ValueError):
        raise ValueError(
            f"{who}: sample {i}: meta[{key!r}] must hold numbers, got {raw!r}"
        ) from None
    if not all(math.isfinite(r) for r in refs):
        raise ValueError(f"{who}: sample {i}: meta[{key!r}] holds NaN or infinite values {refs}")
    return refs


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_sigmoid(x: float) -> float:
    """log σ(x) without overflow: −log(1 + e^(−x))."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _with_score(o: RewardOutput, score: float, info: dict[str, Any]) -> RewardOutput:
    if o.info:
        info = {**info, "inner": o.info}
    return RewardOutput(score, o.token_rewards, o.step_rewards, o.step_ends, info)


# -- PAR ------------------------------------------------------------------------------------


@TRANSFORMS.register("par")
class PAR:
    """Preference As Reward ("Reward Shaping to Mitigate Reward Hacking in RLHF"):

        r̃ = (1/M) Σ_m σ(k·(r − r_ref,m)),   M ≤ 10 reference scores from meta[reference_key]

    r̃ is the reward model's own preference probability against the references, bounded in
    (0, 1) (it rounds to 0 or 1 in float64 only when |k·(r − r_ref)| > ~36).
    """

    def __init__(
        self, reward: Reward | str, k: float = 1.0, reference_key: str = "reference_scores"
    ):
        self.reward = resolve_reward(reward)
        self.k = float(k)
        self.reference_key = reference_key
        self.name = f"par({reward_name(self.reward)})"

    def wrapped(self) -> list[Reward]:
        return [self.reward]

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        outputs = call_reward(self.reward, samples, "par", context)
        result = []
        for i, (s, o) in enumerate(zip(samples, outputs, strict=True)):
            refs = reference_scores(s, self.reference_key, i, "par")
            if len(refs) > MAX_PAR_REFERENCES:
                raise ValueError(
                    f"par: sample {i} has {len(refs)} reference scores in "
                    f"meta[{self.reference_key!r}]; PAR uses at most {MAX_PAR_REFERENCES}"
                )
            score = sum(sigmoid(self.k * (o.score - r)) for r in refs) / len(refs)
            result.append(_with_score(o, score, {"raw": o.score, "references": len(refs)}))
        return result


# -- LSC ------------------------------------------------------------------------------------


@TRANSFORMS.register("lsc")
class LSC:
    """Log-sigmoid centring ("Transforming and Combining Rewards for Aligning LLMs"):

        r̃ = Σ_j log σ(r_j − r_ref,j(x)),   r_ref,j(x) = μ_j + z_q·σ_j

    where μ_j, σ_j are the maximum-likelihood normal fit (population std, ddof 0) to the
    reference scores of reward j in meta[reference_keys[j]] and z_q the standard normal
    quantile (q = 0.85: z = 1.0364). The sum over several rewards is a soft logical AND.
    Give `reward` + `reference_key`, or `rewards` + `reference_keys` (one key each).
    """

    def __init__(
        self,
        reward: Reward | str | None = None,
        reference_key: str = "reference_scores",
        rewards: list[Reward | str] | None = None,
        reference_keys: list[str] | None = None,
        quantile: float = 0.85,
    ):
        if (reward is None) == (rewards is None):
            raise ValueError("lsc: give either `reward` or `rewards`, not both or neither")
        if rewards is None:
            rewards, reference_keys = [reward], [reference_key]
        if not rewards or reference_keys is None or len(reference_keys) != len(rewards):
            raise ValueError(
                f"lsc: {len(rewards)} rewards need as many reference_keys, got {reference_keys!r}"
            )
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"lsc: quantile must be in (0, 1), got {quantile}")
        self.rewards = [resolve_reward(r) for r in rewards]
        self.reference_keys = list(reference_keys)
        self.z = NormalDist().inv_cdf(quantile)
        self.names = _unique_names(self.rewards)
        self.name = f"lsc({', '.join(self.names)})"

    def wrapped(self) -> list[Reward]:
        return list(self.rewards)

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        per_reward = [call_reward(r, samples, "lsc", context) for r in self.rewards]
        result = []
        for i, s in enumerate(samples):
            total, info = 0.0, {}
            for name, key, outputs in zip(self.names, self.reference_keys, per_reward, strict=True):
                refs = reference_scores(s, key, i, "lsc")
                r_ref = statistics.fmean(refs) + self.z * statistics.pstdev(refs)
                total += log_sigmoid(outputs[i].score - r_ref)
                info[f"raw/{name}"] = outputs[i].score
                info[f"ref/{name}"] = r_ref
            if len(self.rewards) == 1:
                result.append(_with_score(per_reward[0][i], total, info))
            else:
                result.append(RewardOutput(total, info=info))
        return result


# -- ensembles ------------------------------------------------------------------------------


@TRANSFORMS.register("ensemble")
class Ensemble:
    """Reward-model ensembles ("Helping or Herding? Reward Model Ensembles Mitigate but do
    not Eliminate Reward Hacking"): combine K scores of one sample by `mode`:
    mean, min, median (mean of the two middle ones for even K), or mean − λ·std with the
    population std (ddof 0) over the K models."""

    MODES = ("mean", "min", "median", "mean_minus_std")

    def __init__(
        self,
        rewards: list[Reward | str],
        mode: Literal["mean", "min", "median", "mean_minus_std"] = "mean",
        lam: float = 1.0,
    ):
        if mode not in self.MODES:
            raise ValueError(f"ensemble: mode must be one of {self.MODES}, got {mode!r}")
        if not rewards:
            raise ValueError("ensemble: needs at least one reward")
        self.rewards = [resolve_reward(r) for r in rewards]
        self.mode, self.lam = mode, float(lam)
        self.names = _unique_names(self.rewards)
        self.name = f"ensemble_{mode}({', '.join(self.names)})"

    def combine(self, scores: list[float]) -> float:
        if self.mode == "mean":
            return statistics.fmean(scores)
        if self.mode == "min":
            return min(scores)
        if self.mode == "median":
            return statistics.median(scores)
        return statistics.fmean(scores) - self.lam * statistics.pstdev(scores)

    def wrapped(self) -> list[Reward]:
        return list(self.rewards)

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        per_reward = [call_reward(r, samples, "ensemble", context) for r in self.rewards]
        result = []
        for i in range(len(samples)):
            scores = [outputs[i].score for outputs in per_reward]
            info = {f"raw/{n}": v for n, v in zip(self.names, scores, strict=True)}
            info["std"] = statistics.pstdev(scores)
            result.append(RewardOutput(self.combine(scores), info=info))
        return result


def _unique_names(rewards: list[Any]) -> list[str]:
    names = [reward_name(r) for r in rewards]
    return [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]


# -- length-bias correction -----------------------------------------------------------------


@TRANSFORMS.register("length_correction")
class LengthCorrection:
    """Length-bias correction after FiMi-RM ("Bias Fitting to Mitigate Length Bias of Reward
    Model in RLHF"): fit g(length) ≈ reward on a running window of recent (length, raw
    reward) pairs and return

        r̃ = r − g(len) + mean_{window} g(len_w)

    which removes the part of the reward that length explains while keeping its mean.
    Each training batch is added to the window first, then g is refit; an evaluation batch
    (context phase "eval") is corrected with the fit of the window as it is and not added.
    The window is the transform's state (`state_dict`), saved in checkpoints. `fit="poly"`: least-squares
    polynomial of `degree` (lowered to distinct lengths − 1 when there are few);
    `fit="binned"`: the window's distinct lengths cut into `bins` consecutive runs, g = the
    mean reward of each run placed at its mean length, linearly interpolated (constant
    beyond the ends). Until the window holds `min_samples` pairs rewards pass through
    unchanged and info says so. `unit`: "tokens" = policy tokens, "chars" = characters.
    """

    def __init__(
        self,
        reward: Reward | str,
        fit: Literal["poly", "binned"] = "poly",
        degree: int = 2,
        bins: int = 8,
        window: int = 1024,
        min_samples: int = 64,
        unit: Literal["tokens", "chars"] = "tokens",
    ):
        if fit not in ("poly", "binned"):
            raise ValueError(f"length_correction: fit must be 'poly' or 'binned', got {fit!r}")
        if unit not in ("tokens", "chars"):
            raise ValueError(f"length_correction: unit must be 'tokens' or 'chars', got {unit!r}")
        if degree < 0 or bins < 1 or window < 1 or min_samples < 1:
            raise ValueError(
                "length_correction: need degree >= 0, bins >= 1, window >= 1, min_samples >= 1"
            )
        self.reward = resolve_reward(reward)
        self.fit, self.degree, self.bins = fit, degree, bins
        self.min_samples, self.unit = min_samples, unit
        self.window: deque[tuple[float, float]] = deque(maxlen=window)
        self.g: Callable[[np.ndarray], np.ndarray] | None = None
        self._lock = threading.Lock()
        self.name = f"length_correction({reward_name(self.reward)})"

    def length(self, sample: Sample, i: int) -> float:
        if self.unit == "chars":
            return float(len(sample.completion))
        if not sample.completion_ids and sample.completion:
            raise ValueError(
                f"length_correction: sample {i} has no completion_ids to count tokens; "
                "use unit='chars' for text-only samples"
            )
        return float(sum(sample.completion_mask))

    def _fit(self) -> Callable[[np.ndarray], np.ndarray]:
        x = np.array([p[0] for p in self.window])
        y = np.array([p[1] for p in self.window])
        distinct = np.unique(x)
        if self.fit == "poly":
            deg = min(self.degree, len(distinct) - 1)
            return np.polynomial.Polynomial.fit(x, y, deg)
        centres, means = [], []
        for run in np.array_split(distinct, min(self.bins, len(distinct))):
            inside = (x >= run[0]) & (x <= run[-1])
            centres.append(x[inside].mean())
            means.append(y[inside].mean())
        return lambda lengths: np.interp(lengths, centres, means)

    def wrapped(self) -> list[Reward]:
        return [self.reward]

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        outputs = call_reward(self.reward, samples, "length_correction", context)
        lengths = [self.length(s, i) for i, s in enumerate(samples)]
        with self._lock:
            if context is None or context.phase == "train":  # eval batches use the fit as is
                self.window.extend(zip(lengths, (o.score for o in outputs), strict=True))
            if len(self.window) < self.min_samples:
                self.g = None
                note = (
                    f"warm-up: {len(self.window)} of {self.min_samples} samples in the window, "
                    "passed through unchanged"
                )
                return [
                    _with_score(o, o.score, {"raw": o.score, "length_correction": note})
                    for o in outputs
                ]
            self.g = g = self._fit()
            mean_g = float(np.mean(g(np.array([p[0] for p in self.window]))))
        fitted = g(np.array(lengths))
        return [
            _with_score(
                o,
                o.score - float(f) + mean_g,
                {"raw": o.score, "fit": float(f), "mean_fit": mean_g},
            )
            for o, f in zip(outputs, fitted, strict=True)
        ]

    def state_dict(self) -> dict[str, Any]:
        """The window (saved in checkpoints: a resumed run corrects like an uninterrupted one)."""
        with self._lock:
            return {"window": [list(p) for p in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.window.clear()
            self.window.extend((float(x), float(y)) for x, y in state["window"])

    def stats(self) -> dict[str, float]:
        """For logging: window size, whether a fit is active, mean fit, the length–reward
        correlation in the window and (poly) the coefficients in powers of the length."""
        with self._lock:
            x = np.array([p[0] for p in self.window])
            y = np.array([p[1] for p in self.window])
            out = {"length_correction/window": float(len(x)), "length_correction/fitted": 0.0}
            if len(x) > 1 and x.std() > 0 and y.std() > 0:
                out["length_correction/corr"] = float(np.corrcoef(x, y)[0, 1])
            if self.g is not None:
                out["length_correction/fitted"] = 1.0
                out["length_correction/mean_fit"] = float(np.mean(self.g(x)))
                if isinstance(self.g, np.polynomial.Polynomial):
                    for d, c in enumerate(self.g.convert().coef):
                        out[f"length_correction/coef_{d}"] = float(c)
        return out


# -- potential-based shaping ----------------------------------------------------------------


@TRANSFORMS.register("potential_shaping")
class PotentialShaping:
    """Potential-based reward shaping (Ng, Harada & Russell 1999; used by Robo-Dopamine):

        r'_k = r_k + γ·Φ(s_{k+1}) − Φ(s_k),   k = 0 .. K−1

    on the step rewards of the wrapped reward. s_k is the state before step k; `potential`
    is called as Φ(sample, k) for k = 0 .. K−1, and the state after the last step is
    terminal with Φ(s_K) = 0 by convention (it is never asked), which keeps the optimal
    policy unchanged. With γ = 1 the shaped steps sum to Σ r_k − Φ(s_0). `score="keep"`
    (default) leaves the outcome score as the wrapped reward gave it; `score="sum"` makes
    it the sum of the shaped step rewards. Step ends are unchanged.
    """

    def __init__(
        self,
        reward: Reward | str,
        potential: Callable[[Sample, int], float],
        gamma: float = 1.0,
        score: Literal["keep", "sum"] = "keep",
    ):
        if not callable(potential):
            raise TypeError(f"potential_shaping: potential must be callable, got {potential!r}")
        if score not in ("keep", "sum"):
            raise ValueError(f"potential_shaping: score must be 'keep' or 'sum', got {score!r}")
        self.reward = resolve_reward(reward)
        self.potential, self.gamma, self.score = potential, float(gamma), score
        self.name = f"potential_shaping({reward_name(self.reward)})"

    def wrapped(self) -> list[Reward]:
        return [self.reward]

    def __call__(
        self, samples: list[Sample], context: RewardContext | None = None
    ) -> list[RewardOutput]:
        outputs = call_reward(self.reward, samples, "potential_shaping", context)
        result = []
        for i, (s, o) in enumerate(zip(samples, outputs, strict=True)):
            if o.step_rewards is None:
                raise ValueError(
                    f"potential_shaping: wrapped reward {reward_name(self.reward)!r} gave no "
                    f"step_rewards for sample {i}"
                )
            phi = [float(self.potential(s, k)) for k in range(len(o.step_rewards))] + [0.0]
            if not all(math.isfinite(p) for p in phi):
                raise ValueError(f"potential_shaping: potential gave {phi[:-1]} for sample {i}")
            shaped = [r + self.gamma * phi[k + 1] - phi[k] for k, r in enumerate(o.step_rewards)]
            score = o.score if self.score == "keep" else sum(shaped)
            info = {
                "raw": o.score,
                "raw_step_rewards": list(o.step_rewards),
                "potentials": phi[:-1],
            }
            if o.info:
                info["inner"] = o.info
            result.append(RewardOutput(score, o.token_rewards, shaped, list(o.step_ends), info))
        return result
