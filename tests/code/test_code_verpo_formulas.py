"""VeRPO equations on pass matrices computed by hand (sigma=0.1, so 2 sigma^2 = 0.02)."""

import math

import pytest
import torch

from rewardkit_code.verpo import (
    difficulty_weights,
    group_advantages,
    group_rewards,
    kernel_density,
    pass_rates,
    trajectory_reward,
)

A, S, D = 2.0, 0.1, 1e-3


def t(rows):
    return torch.tensor(rows)


def test_three_trajectories_single_turn():
    # P = [[1,0],[1,1],[0,0]], M = 3: rho = [2/3, 1/3]
    # N_hat = 1 + exp(-(1/3)^2 / 0.02) = 1 + exp(-5.5556) = 1.0038659 (both tests)
    # w1 = exp(-4/3) / (1.0038659 + 0.001) = 0.2635971 / 1.0048659 = 0.2623207
    # w2 = exp(-2/3) / 1.0048659 = 0.5134171 / 1.0048659 = 0.5109310
    mats = [t([[1, 0]]), t([[1, 1]]), t([[0, 0]])]
    r_turn, r_traj, w, rho = group_rewards(mats, A, S, D, gamma=1.0)
    assert rho.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert w.tolist() == pytest.approx([0.2623207, 0.5109310], abs=1e-6)
    # R_turn = [w1, w1 + w2, 0] = [0.2623207, 0.7732517, 0]; R_traj = [0, 1, 0]
    assert [float(r[0]) for r in r_turn] == pytest.approx([0.2623207, 0.7732517, 0.0], abs=1e-6)
    assert r_traj.tolist() == [0.0, 1.0, 0.0]
    # A_traj = R_traj - 1/3; mean R_turn = 1.0355724 / 3 = 0.3451908
    # A = [-1/3 - 0.0828701, 2/3 + 0.4280609, -1/3 - 0.3451908]
    adv = group_advantages(r_turn, r_traj, beta=1.0)
    assert [float(a[0]) for a in adv] == pytest.approx(
        [-0.4162034, 1.0947275, -0.6785241], abs=1e-6
    )
    # beta scales only the turn part: beta = 0 leaves A_traj
    adv0 = group_advantages(r_turn, r_traj, beta=0.0)
    assert [float(a[0]) for a in adv0] == pytest.approx([-1 / 3, 2 / 3, -1 / 3])


def test_multi_turn_group_with_discount():
    # traj 1: [[0,1],[1,1]] (solved at turn 2), traj 2: [[0,0],[0,1],[0,1]] (never solved)
    # M = 5: rho1 = 1/5 = 0.2, rho2 = 4/5 = 0.8; N_hat = 1 + exp(-0.36/0.02) = 1 + 1.5e-8
    # w1 = exp(-0.4)/1.001 = 0.6703200/1.001 = 0.6696504, w2 = exp(-1.6)/1.001 = 0.2016948
    mats = [t([[0, 1], [1, 1]]), t([[0, 0], [0, 1], [0, 1]])]
    r_turn, r_traj, w, _ = group_rewards(mats, A, S, D, gamma=0.9)
    assert w.tolist() == pytest.approx([0.6696504, 0.2016948], abs=1e-6)
    assert r_turn[0].tolist() == pytest.approx([0.2016948, 0.8713452], abs=1e-6)
    assert r_turn[1].tolist() == pytest.approx([0.0, 0.2016948, 0.2016948], abs=1e-6)
    # R_traj = [1 * 0.9^2, 0] = [0.81, 0]
    assert r_traj.tolist() == pytest.approx([0.81, 0.0])
    # mean R_turn over 5 turns = (w1 + 4 w2) / 5 = 1.4764296 / 5 = 0.2952859
    # A_traj = [0.405, -0.405]
    adv = group_advantages(r_turn, r_traj, beta=1.0)
    assert adv[0].tolist() == pytest.approx([0.3114089, 0.9810593], abs=1e-6)
    assert adv[1].tolist() == pytest.approx([-0.7002859, -0.4985911, -0.4985911], abs=1e-6)


def test_density_calibration_shares_weight_between_similar_tests():
    # rho = [0, 0, 1]: N_hat = [2 + e^-50, 2 + e^-50, 1 + 2 e^-50] ~ [2, 2, 1]
    rho = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert kernel_density(rho, S).tolist() == pytest.approx([2.0, 2.0, 1.0])
    # w = [1/2.001, 1/2.001, e^-2/1.001] = [0.4997501, 0.4997501, 0.1352001]
    assert difficulty_weights(rho, A, S, D).tolist() == pytest.approx(
        [0.4997501, 0.4997501, 0.1352001], abs=1e-6
    )


@pytest.mark.parametrize("value", [0, 1])
def test_all_tests_same_rate_gives_zero_turn_advantage(value):
    # all rho_j = 0: every R_turn = 0; all rho_j = 1: every R_turn = sum_j w_j -> A_turn = 0
    # and R_traj is the same for everyone -> A = 0 everywhere
    mats = [torch.full((1, 3), value), torch.full((2, 3), value), torch.full((1, 3), value)]
    r_turn, r_traj, _, rho = group_rewards(mats, A, S, D, gamma=1.0)
    assert rho.tolist() == [float(value)] * 3
    for a in group_advantages(r_turn, r_traj, beta=1.0):
        assert a.abs().max().item() == pytest.approx(0.0, abs=1e-12)


def test_single_test():
    # J = 1, P = [[1],[0]]: rho = 0.5, N_hat = 1, w = e^-1 / 1.001 = 0.3675119
    r_turn, r_traj, w, _ = group_rewards([t([[1]]), t([[0]])], A, S, D, gamma=1.0)
    assert w.tolist() == pytest.approx([0.3675119], abs=1e-6)
    # A = +-(0.5 + w/2) = +-0.6837560
    adv = group_advantages(r_turn, r_traj, beta=1.0)
    assert [float(a[0]) for a in adv] == pytest.approx([0.6837560, -0.6837560], abs=1e-6)


def test_group_of_one():
    # single turn: A_traj = 0 and A_turn = R_turn - itself = 0
    r_turn, r_traj, _, _ = group_rewards([t([[1, 0]])], A, S, D, gamma=1.0)
    assert group_advantages(r_turn, r_traj, beta=1.0)[0].tolist() == [0.0]
    # two turns [[0,0],[1,1]]: rho = [0.5, 0.5], N_hat = 2, w = e^-1/2.001 = 0.1838478
    # R_turn = [0, 2w], mean = w -> A = [-w, +w]
    r_turn, r_traj, _, _ = group_rewards([t([[0, 0], [1, 1]])], A, S, D, gamma=0.9)
    assert r_traj.tolist() == pytest.approx([0.81])
    adv = group_advantages(r_turn, r_traj, beta=1.0)[0]
    assert adv.tolist() == pytest.approx([-0.1838478, 0.1838478], abs=1e-6)


def test_trajectory_reward():
    assert trajectory_reward(True, 1, 1.0) == 1.0
    assert trajectory_reward(True, 3, 0.9) == pytest.approx(0.729)
    assert trajectory_reward(False, 1, 0.9) == 0.0


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="trajectory 1"):
        group_rewards([t([[1, 0]]), t([[1, 0, 1]])], A, S, D, 1.0)
    with pytest.raises(ValueError, match="at least one trajectory"):
        group_rewards([], A, S, D, 1.0)
    with pytest.raises(ValueError, match="pass matrix"):
        pass_rates(torch.zeros(0, 2))


def test_rates_are_means_over_all_turns():
    # 4 turns, test 1 passed in 3 of them -> 0.75; test 2 in 1 -> 0.25
    assert pass_rates(t([[1, 0], [1, 1], [1, 0], [0, 0]])).tolist() == [0.75, 0.25]
    assert math.isclose(float(kernel_density(torch.tensor([0.5]), S)[0]), 1.0)
