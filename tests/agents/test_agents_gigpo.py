"""GiGPO (arXiv 2505.10978) against advantages computed by hand from the spec's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit import ADVANTAGES
from rewardkit.types import RolloutBatch
from rewardkit_agents.gigpo import GiGPO, discounted_returns


def step_values(adv: torch.Tensor, batch: RolloutBatch) -> list[float]:
    """Flattened per-step advantages (first token of each turn), checking the whole span."""
    out = []
    for i, turns in enumerate(batch.turns):
        for turn in turns:
            span = adv[i, turn.start : turn.end]
            assert torch.all(span == span[0])
            out.append(float(span[0]))
    assert torch.all(adv[batch.completion_mask == 0] == 0)
    return out


# Group of three trajectories; (state before the step, action, next, turn reward):
#   t0 R=1: A -> B -> ...  rewards [0, 1]
#   t1 R=0: A -> C -> ...  rewards [0, 0]
#   t2 R=0: A -> B -> ...  rewards [0, 0]
# gamma = 0.5: step returns t0 [0 + 0.5 * 1, 1] = [0.5, 1]; t1 [0, 0]; t2 [0, 0].
# Anchor groups: A = {0.5, 0, 0}, B = {1 (t0), 0 (t2)}, C = {0 (t1)} (singleton).
THREE = [
    (0, 1.0, [("A", "x", "B", 0.0), ("B", "y", "G", 1.0)]),
    (0, 0.0, [("A", "z", "C", 0.0), ("C", "y", "D", 0.0)]),
    (0, 0.0, [("A", "x", "B", 0.0), ("B", "w", "E", 0.0)]),
]


def test_registered_and_requires_turns():
    assert ADVANTAGES.get("agents.gigpo") is GiGPO
    assert GiGPO.requires == frozenset({"turns"})


def test_discounted_returns_by_hand():
    # gamma 0.5 over [1, 2, 3]: R2 = 3, R1 = 2 + 0.5 * 3 = 3.5, R0 = 1 + 0.5 * 3.5 = 2.75
    assert discounted_returns([1.0, 2.0, 3.0], 0.5) == [2.75, 3.5, 3.0]
    assert discounted_returns([], 0.9) == []


def test_without_normalisation(make_batch):
    # F = 1. Episode: mean R = 1/3 -> A^E = [2/3, -1/3, -1/3].
    # Step: anchor A mean 1/6 -> t0: 0.5 - 1/6 = 1/3, t1: -1/6, t2: -1/6;
    #       anchor B mean 0.5 -> t0: 0.5, t2: -0.5; anchor C singleton -> 0.
    # Final (omega = 1): t0 [2/3 + 1/3, 2/3 + 1/2] = [1, 7/6];
    #                    t1 [-1/3 - 1/6, -1/3 + 0] = [-1/2, -1/3];
    #                    t2 [-1/3 - 1/6, -1/3 - 1/2] = [-1/2, -5/6].
    batch = make_batch(THREE)
    adv = GiGPO(gamma=0.5, normalization="none")(batch)
    assert step_values(adv, batch) == pytest.approx([1, 7 / 6, -1 / 2, -1 / 3, -1 / 2, -5 / 6])


def test_omega_weights_the_step_term(make_batch):
    # omega = 2: A^E + 2 A^S -> t0 [2/3 + 2/3, 2/3 + 1] = [4/3, 5/3]; t1 [-2/3, -1/3];
    # t2 [-2/3, -1/3 - 1] = [-2/3, -4/3]
    batch = make_batch(THREE)
    adv = GiGPO(gamma=0.5, omega=2.0, normalization="none")(batch)
    assert step_values(adv, batch) == pytest.approx([4 / 3, 5 / 3, -2 / 3, -1 / 3, -2 / 3, -4 / 3])


def test_with_std_normalisation(make_batch):
    # Episode: [1, 0, 0], deviations [2/3, -1/3, -1/3], unbiased var (4/9 + 1/9 + 1/9)/2
    #   = 1/3, std = 1/sqrt(3) -> A^E = [2/sqrt(3), -1/sqrt(3), -1/sqrt(3)] = [1.1547, -0.5774, ..]
    # Anchor A: [0.5, 0, 0], deviations [1/3, -1/6, -1/6], var (1/9 + 1/36 + 1/36)/2 = 1/12,
    #   std = 1/sqrt(12) -> A^S = [(1/3) sqrt(12), -(1/6) sqrt(12), ..] = [1.1547, -0.5774, -0.5774]
    # Anchor B: [1, 0], var 0.5, std 1/sqrt(2) -> A^S = [0.5 sqrt(2), -0.5 sqrt(2)] = [0.7071, -0.7071]
    e, h = 1 / math.sqrt(3), 0.5 * math.sqrt(2)
    expected = [2 * e + 2 * e, 2 * e + h, -e - e, -e + 0.0, -e - e, -e - h]
    batch = make_batch(THREE)
    adv = GiGPO(gamma=0.5, normalization="std")(batch)
    assert step_values(adv, batch) == pytest.approx(expected, abs=1e-5)


def test_default_gamma_is_095(make_batch):
    # gamma 0.95, F = 1: t0 returns [0.95, 1]; anchor A {0.95, 0, 0} mean 0.95/3;
    # t0 step 0: A^E 2/3 + (0.95 - 0.95/3) = 2/3 + 0.6333.. = 1.3
    batch = make_batch(THREE)
    adv = GiGPO(normalization="none")(batch)
    assert step_values(adv, batch)[0] == pytest.approx(2 / 3 + 0.95 * 2 / 3)


def test_outcome_step_rewards(make_batch):
    # With all turn rewards 0, "turn" mode has every step return 0 -> A^S = 0 -> A = A^E.
    # "outcome" puts R_i on the last step: t0 [0, 1], others [0, 0]: the same returns as
    # the turn rewards of THREE, so the same numbers as test_without_normalisation.
    zero = [(g, r, [(s, a, n, 0.0) for s, a, n, _ in steps]) for g, r, steps in THREE]
    batch = make_batch(zero)
    turn_mode = step_values(GiGPO(gamma=0.5, normalization="none")(batch), batch)
    assert turn_mode == pytest.approx([2 / 3, 2 / 3, -1 / 3, -1 / 3, -1 / 3, -1 / 3])
    outcome = GiGPO(gamma=0.5, normalization="none", step_rewards="outcome")(batch)
    assert step_values(outcome, batch) == pytest.approx([1, 7 / 6, -1 / 2, -1 / 3, -1 / 2, -5 / 6])


def test_repeated_state_within_one_trajectory_is_an_anchor_group(make_batch):
    # Sample 0 visits A twice; sample 1 (another prompt group) also starts in A.
    # gamma 1, F = 1, rewards [1, 0, 0]: returns [1, 0, 0] at states [A, A, B];
    # anchor (group 0, A) = {1, 0}, mean 0.5 -> A^S = [+0.5, -0.5]; B singleton -> 0;
    # sample 1's A is in group 1, so it is a singleton -> 0 (not merged across groups).
    batch = make_batch(
        [
            (0, 1.0, [("A", "u", "A", 1.0), ("A", "r", "B", 0.0), ("B", "r", "G", 0.0)]),
            (1, 0.0, [("A", "u", "A", 0.0)]),
        ]
    )
    adv = GiGPO(gamma=1.0, normalization="none")(batch)
    # both groups are singletons for the episode term: A^E = 0
    assert step_values(adv, batch) == pytest.approx([0.5, -0.5, 0.0, 0.0])


def test_std_zero_anchor_group_gives_zero(make_batch):
    # anchor A has returns {0, 0}: centred 0, std 0 -> 0 (not nan)
    batch = make_batch([(0, 1.0, [("A", "a", "B", 0.0)]), (0, 1.0, [("A", "b", "C", 0.0)])])
    adv = GiGPO()(batch)
    assert torch.all(adv == 0) and not torch.isnan(adv).any()


def test_bad_options_and_input(make_batch):
    with pytest.raises(ValueError, match="gamma"):
        GiGPO(gamma=1.5)
    with pytest.raises(ValueError, match="normalization"):
        GiGPO(normalization="batch")
    with pytest.raises(ValueError, match="step_rewards"):
        GiGPO(step_rewards="dense")
    batch = make_batch(THREE)
    with pytest.raises(ValueError, match="batch.turns is None"):
        GiGPO()(RolloutBatch(batch.scores, batch.groups, batch.completion_mask))
    bad = make_batch(THREE)
    bad.groups = torch.tensor([0, 0])
    with pytest.raises(ValueError, match="groups must have shape"):
        GiGPO()(bad)
