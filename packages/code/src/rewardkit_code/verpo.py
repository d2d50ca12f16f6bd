"""VeRPO: dense verifiable rewards from partial test success.

Paper: "VeRPO: Verifiable Dense Reward Policy Optimization for Code Generation"
(arXiv 2601.03525; v3 "Beyond Binary: Turning Partial Success into Dense Verifiable
Rewards ..."). For a prompt with tests u_1..u_J and a group of N trajectories, each of
one or more turns (attempts), p_tij = 1 if turn t of trajectory i passes test j, M = the
number of turns in the group:

    rho_j      = (1/M) sum_i sum_t p_tij                              (pass rate)
    N_hat(rho_j) = sum_j' exp(-(rho_j - rho_j')^2 / (2 sigma^2))      (kernel density)
    w_j        = exp(-alpha rho_j) / (N_hat(rho_j) + delta)           (difficulty weight)
    R_turn(i,t) = sum_j w_j p_tij                                     (dense local reward)
    R_traj(i)  = 1[final turn passes all tests] gamma^turns(i)       (outcome reward)
    A_turn(i,t) = R_turn(i,t) - mean over all turns of the group
    A_traj(i)  = R_traj(i) - mean_k R_traj(k)                        (no std division)
    A(i,t)     = A_traj(i) + beta A_turn(i,t)       for every token of turn t

Defaults (unpublished, tunable): alpha=2, sigma=0.1, delta=1e-3, beta=1, gamma=1 single
turn, 0.9 multi-turn. Timeouts and crashes are fails; a completion without a code block
fails every test.

Reward `code.verpo` returns score = R_traj (the outcome), step_rewards = R_turn per turn
(step_ends = last token of each turn) and the pass matrix in `info`; advantage
`code.verpo` turns those into A(i,t). With `dense_score=True` the score becomes
R_traj + beta * mean_t R_turn, for use with outcome-only advantage estimators instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch

from rewardkit.advantages.base import AdvantageEstimator, check_batch
from rewardkit.types import RewardOutput, RolloutBatch, Sample
from rewardkit_code.execution import CodeExecutor, outcome_counts, tests_of

# -- the equations -------------------------------------------------------------------------


def pass_rates(pass_matrix: torch.Tensor) -> torch.Tensor:
    """rho_j = (1/M) sum over all M turns of the group of p_tj. (M, J) -> (J,)."""
    if pass_matrix.dim() != 2 or pass_matrix.shape[0] == 0 or pass_matrix.shape[1] == 0:
        raise ValueError(
            f"the group's pass matrix must be (M>0, J>0), got {tuple(pass_matrix.shape)}"
        )
    return pass_matrix.double().mean(dim=0)


def kernel_density(rho: torch.Tensor, sigma: float) -> torch.Tensor:
    """N_hat(rho_j) = sum_j' exp(-(rho_j - rho_j')^2 / (2 sigma^2)) (includes j' = j)."""
    diff = rho[:, None] - rho[None, :]
    return torch.exp(-(diff**2) / (2 * sigma**2)).sum(dim=1)


def difficulty_weights(rho: torch.Tensor, alpha: float, sigma: float, delta: float) -> torch.Tensor:
    """w_j = exp(-alpha rho_j) / (N_hat(rho_j) + delta): rare passes weigh more, and tests
    with many look-alikes (similar pass rate) share their weight."""
    return torch.exp(-alpha * rho) / (kernel_density(rho, sigma) + delta)


def trajectory_reward(final_passes_all: bool, turns: int, gamma: float) -> float:
    """R_traj = 1[final turn passes all tests] * gamma^turns."""
    return float(final_passes_all) * gamma**turns


def group_rewards(
    matrices: list[torch.Tensor], alpha: float, sigma: float, delta: float, gamma: float
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """For one group: (R_turn per trajectory (T_i,), R_traj (N,), w (J,), rho (J,)).

    `matrices[i]` is trajectory i's (T_i, J) pass matrix, turns in order.
    """
    if not matrices:
        raise ValueError("a group needs at least one trajectory")
    J = matrices[0].shape[1]
    for i, m in enumerate(matrices):
        if m.dim() != 2 or m.shape[0] == 0 or m.shape[1] != J:
            raise ValueError(
                f"trajectory {i}: pass matrix must be (turns>0, J={J}), got {tuple(m.shape)}"
            )
    stacked = torch.cat([m.double() for m in matrices], dim=0)  # (M, J)
    rho = pass_rates(stacked)
    w = difficulty_weights(rho, alpha, sigma, delta)
    r_turn = [m.double() @ w for m in matrices]
    r_traj = torch.tensor(
        [trajectory_reward(bool(m[-1].all()), m.shape[0], gamma) for m in matrices],
        dtype=torch.float64,
    )
    return r_turn, r_traj, w, rho


def group_advantages(
    r_turn: list[torch.Tensor], r_traj: torch.Tensor, beta: float
) -> list[torch.Tensor]:
    """A(i,t) = (R_traj(i) - mean R_traj) + beta (R_turn(i,t) - mean of all turns' R_turn)."""
    all_turns = torch.cat([r.double() for r in r_turn])
    a_traj = r_traj.double() - r_traj.double().mean()
    mean_turn = all_turns.mean()
    return [a_traj[i] + beta * (r.double() - mean_turn) for i, r in enumerate(r_turn)]


# -- reward ------------------------------------------------------------------------------


def attempts(sample: Sample) -> list[str]:
    """The code attempts of a sample: each turn's action, or the completion if no turns."""
    if sample.turns:
        return [t.action for t in sample.turns]
    return [sample.completion]


def step_ends(sample: Sample) -> list[int]:
    """Last completion token of each turn (0 when the sample carries no tokens)."""
    if sample.turns:
        return [max(t.end - 1, 0) for t in sample.turns]
    return [max(len(sample.completion_ids) - 1, 0)]


def _check_hyper(alpha: float, sigma: float, delta: float, gamma: float | None) -> None:
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not (math.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta must be >= 0, got {delta}")
    if gamma is not None and not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")


class VeRPOReward:
    """Reward `code.verpo` (batch-level: test weights are group statistics).

    Options: the executor's (backend, timeout, program_budget, pool_size, memory_mb, image,
    require_code_block) and alpha, sigma, delta, beta, gamma (None = 1 for single-turn
    samples, 0.9 for samples that carry turns), dense_score.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        sigma: float = 0.1,
        delta: float = 1e-3,
        beta: float = 1.0,
        gamma: float | None = None,
        dense_score: bool = False,
        executor: CodeExecutor | None = None,
        **executor_options: Any,
    ):
        _check_hyper(alpha, sigma, delta, gamma)
        self.alpha, self.sigma, self.delta, self.beta, self.gamma = alpha, sigma, delta, beta, gamma
        self.dense_score = dense_score
        self.executor = executor or CodeExecutor(**executor_options)

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        items, owner = [], []
        for i, s in enumerate(samples):
            for code in attempts(s):
                items.append((code, s.meta))
                owner.append(i)
        outcomes = self.executor.outcomes(items)
        per_sample: dict[int, list] = defaultdict(list)
        for i, outs in zip(owner, outcomes, strict=True):
            per_sample[i].append(outs)
        groups: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(samples):
            groups[s.group].append(i)
        results: list[RewardOutput | None] = [None] * len(samples)
        for g, idx in groups.items():
            n_tests = {len(tests_of(samples[i].meta, f"sample {i}")) for i in idx}
            if len(n_tests) != 1:
                raise ValueError(
                    f"group {g}: its samples have different numbers of tests {sorted(n_tests)}; "
                    f"samples of one group must share the prompt and its tests"
                )
            multi = any(samples[i].turns for i in idx)
            gamma = self.gamma if self.gamma is not None else (0.9 if multi else 1.0)
            mats = [
                torch.tensor([[int(o.passed) for o in outs] for outs in per_sample[i]]) for i in idx
            ]
            r_turn, r_traj, w, rho = group_rewards(mats, self.alpha, self.sigma, self.delta, gamma)
            for k, i in enumerate(idx):
                final = per_sample[i][-1]
                score = float(r_traj[k])
                if self.dense_score:
                    score += self.beta * float(r_turn[k].mean())
                results[i] = RewardOutput(
                    score=score,
                    step_rewards=[float(v) for v in r_turn[k]],
                    step_ends=step_ends(samples[i]),
                    info={
                        "pass_matrix": mats[k].tolist(),
                        "pass_rate": sum(o.passed for o in final) / len(final),
                        "r_traj": float(r_traj[k]),
                        "test_weights": [round(float(x), 6) for x in w],
                        "outcomes": outcome_counts(final),
                        "first_error": next((o.message for o in final if not o.passed), ""),
                    },
                )
        return results  # type: ignore[return-value]

    def stats(self) -> dict[str, float]:
        """Execution counters of this reward's executor (see CodeExecutor.stats)."""
        return self.executor.stats()


# -- advantage ---------------------------------------------------------------------------


class VeRPOAdvantage(AdvantageEstimator):
    """Advantage `code.verpo`: A(i,t) = A_traj(i) + beta A_turn(i,t) on the tokens of turn t.

    Reads batch.scores as R_traj (the combined outcome reward) and batch.step_rewards /
    step_ends as R_turn per turn and the last token of each turn: turn t covers the
    tokens after turn t-1's end up to its own end (an empty turn covers none); tokens after
    the last end get the last turn's value. Zero wherever completion_mask is 0. Needs
    nothing extra from the trainer (`requires` is empty): its inputs come from the reward.
    """

    requires: frozenset[str] = frozenset()

    def __init__(self, beta: float = 1.0):
        if not math.isfinite(beta):
            raise ValueError(f"beta must be finite, got {beta}")
        self.beta = beta

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        check_batch(batch, "code.verpo")
        B, T = batch.completion_mask.shape
        if batch.step_rewards is None or batch.step_ends is None:
            raise ValueError(
                "advantage code.verpo needs per-turn step_rewards and step_ends; score the "
                "batch with the code.verpo reward"
            )
        adv = torch.zeros(B, T, dtype=torch.float64)
        for g in batch.groups.unique().tolist():
            idx = (batch.groups == g).nonzero().flatten().tolist()
            r_turn = []
            for i in idx:
                steps, ends = batch.step_rewards[i], batch.step_ends[i]
                if not steps:
                    raise ValueError(f"sample {i} (group {g}) has no step_rewards from code.verpo")
                if len(ends) != len(steps) or any(
                    b < a for a, b in zip(ends, ends[1:], strict=False)
                ):
                    raise ValueError(
                        f"sample {i}: step_ends {ends} must be one non-decreasing index per "
                        f"step reward ({len(steps)})"
                    )
                if ends[-1] >= max(T, 1):
                    raise ValueError(f"sample {i}: step_ends {ends} must stay below T={T}")
                r_turn.append(torch.tensor(steps, dtype=torch.float64))
            scores = batch.scores[idx].double()
            per_turn = group_advantages(r_turn, scores, self.beta)
            for i, a in zip(idx, per_turn, strict=True):
                start = 0
                ends = batch.step_ends[i]
                for t, end in enumerate(ends):
                    stop = T if t == len(ends) - 1 else end + 1
                    adv[i, start:stop] = a[t]
                    start = end + 1
        return (adv * batch.completion_mask.double()).float()
