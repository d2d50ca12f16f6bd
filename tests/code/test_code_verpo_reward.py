"""Reward code.verpo and advantage code.verpo: grouping, outputs, token layout, errors."""

import pytest
import torch

from rewardkit import ADVANTAGES, REWARDS
from rewardkit.rewards import Scorer, WeightedReward
from rewardkit.types import RewardOutput, RolloutBatch, Sample, Turn
from rewardkit_code.execution import CodeExecutor
from rewardkit_code.rewards import Binary, PassRate
from rewardkit_code.sandbox import TestOutcome
from rewardkit_code.verpo import VeRPOAdvantage, VeRPOReward

TESTS = [
    {"type": "assert", "code": "assert f(1) == 1"},
    {"type": "assert", "code": "assert f(2) == 4"},
]


class TableExecutor(CodeExecutor):
    """Looks the pass vector up by completion text: tests the reward logic, not execution."""

    def __init__(self, table):
        super().__init__(backend="local")
        self.table = table
        self.calls = []

    def outcomes(self, items):
        self.calls.append([c for c, _ in items])
        return [[TestOutcome("pass" if p else "fail") for p in self.table[c]] for c, _ in items]


def sample(text, group=0, n_tokens=3, turns=None):
    return Sample(
        prompt="p",
        completion=text,
        completion_ids=list(range(n_tokens)),
        group=group,
        meta={"tests": TESTS},
        turns=turns,
    )


def test_single_turn_group_matches_hand_computation():
    # same matrix as the formula test: P = [[1,0],[1,1],[0,0]]
    ex = TableExecutor({"a": [1, 0], "b": [1, 1], "c": [0, 0]})
    outs = VeRPOReward(executor=ex)([sample("a"), sample("b"), sample("c")])
    assert [o.score for o in outs] == [0.0, 1.0, 0.0]  # R_traj, gamma = 1 single turn
    assert outs[0].step_rewards == pytest.approx([0.2623207], abs=1e-6)
    assert outs[1].step_rewards == pytest.approx([0.7732517], abs=1e-6)
    assert outs[2].step_rewards == [0.0]
    assert outs[0].step_ends == [2]
    assert outs[1].info["pass_matrix"] == [[1, 1]]
    assert outs[0].info["pass_rate"] == 0.5


def test_groups_are_independent():
    # group 1 alone: "a" is its only sample -> rho = [1, 0], R_traj = 0, dense part w1 only
    ex = TableExecutor({"a": [1, 0], "b": [1, 1], "c": [0, 0]})
    outs = VeRPOReward(executor=ex)([sample("a", 0), sample("b", 0), sample("a", 1)])
    # group 0: rho = [1, 0.5]; group 1: rho = [1, 0]: w1 = e^-2 / (1 + e^-50 + 0.001)
    assert outs[2].step_rewards == pytest.approx([0.1352001], abs=1e-6)
    assert outs[2].info["test_weights"] != outs[0].info["test_weights"]


def test_dense_score_option():
    ex = TableExecutor({"a": [1, 0], "b": [1, 1], "c": [0, 0]})
    outs = VeRPOReward(executor=ex, dense_score=True)([sample("a"), sample("b"), sample("c")])
    # score = R_traj + beta * mean_t R_turn
    assert [o.score for o in outs] == pytest.approx([0.2623207, 1.7732517, 0.0], abs=1e-6)


def test_multi_turn_samples_use_every_turn_and_gamma_09():
    ex = TableExecutor({"x1": [0, 1], "x2": [1, 1], "y1": [0, 0], "y2": [0, 1], "y3": [0, 1]})
    s1 = sample("x1x2", n_tokens=6, turns=[Turn(0, 3, action="x1"), Turn(3, 6, action="x2")])
    s2 = sample(
        "y",
        n_tokens=9,
        turns=[Turn(0, 3, action="y1"), Turn(3, 6, action="y2"), Turn(6, 9, action="y3")],
    )
    outs = VeRPOReward(executor=ex)([s1, s2])
    assert ex.calls == [["x1", "x2", "y1", "y2", "y3"]]
    assert [o.score for o in outs] == pytest.approx([0.81, 0.0])  # 0.9^2 * solved
    assert outs[0].step_rewards == pytest.approx([0.2016948, 0.8713452], abs=1e-6)
    assert outs[0].step_ends == [2, 5]
    assert outs[1].step_ends == [2, 5, 8]


def test_advantage_token_layout():
    # scores [1, 0] -> A_traj = [0.5, -0.5]; turn rewards [[0.2, 0.6], [0.1]], mean 0.3
    # row 0: turn 1 (tokens 0..2) = 0.5 - 0.1 = 0.4, turn 2 (3..4) = 0.5 + 0.3 = 0.8
    # row 1: one turn (tokens 0..3) = -0.5 - 0.2 = -0.7; mask zeroes tokens 2 (row 0) and padding
    s0 = Sample("p", "c", completion_ids=[1] * 5, completion_mask=[1, 1, 0, 1, 1], group=3)
    s1 = Sample("p", "c", completion_ids=[1] * 4, group=3)
    outs = [
        RewardOutput(1.0, step_rewards=[0.2, 0.6], step_ends=[2, 4]),
        RewardOutput(0.0, step_rewards=[0.1], step_ends=[3]),
    ]
    adv = VeRPOAdvantage()(RolloutBatch.from_samples([s0, s1], outs))
    expected = torch.tensor([[0.4, 0.4, 0.0, 0.8, 0.8], [-0.7, -0.7, -0.7, -0.7, 0.0]])
    assert torch.allclose(adv, expected, atol=1e-6)
    half = VeRPOAdvantage(beta=0.5)(RolloutBatch.from_samples([s0, s1], outs))
    assert half[0, 0].item() == pytest.approx(0.5 - 0.05)


def test_reward_then_advantage_end_to_end_through_the_scorer():
    ex = TableExecutor({"a": [1, 0], "b": [1, 1], "c": [0, 0]})
    samples = [sample("a"), sample("b"), sample("c")]
    scorer = Scorer([WeightedReward("verpo", VeRPOReward(executor=ex))])
    res = scorer(samples)
    adv = VeRPOAdvantage()(RolloutBatch.from_samples(samples, res.outputs))
    # every token of a single-turn sample carries A = [-0.4162034, 1.0947275, -0.6785241]
    assert adv[:, 0].tolist() == pytest.approx([-0.4162034, 1.0947275, -0.6785241], abs=1e-6)
    assert torch.equal(adv[:, 0:1].expand(-1, 3), adv)
    scorer.close()


def test_advantage_errors():
    s = Sample("p", "c", completion_ids=[1, 1])
    with pytest.raises(ValueError, match="step_rewards"):
        VeRPOAdvantage()(RolloutBatch.from_samples([s], [RewardOutput(1.0)]))
    bad = RewardOutput(1.0, step_rewards=[0.1, 0.2], step_ends=[1, 0])
    with pytest.raises(ValueError, match="non-decreasing"):
        VeRPOAdvantage()(RolloutBatch.from_samples([s], [bad]))
    far = RewardOutput(1.0, step_rewards=[0.1], step_ends=[5])
    with pytest.raises(ValueError, match="below T=2"):
        VeRPOAdvantage()(RolloutBatch.from_samples([s], [far]))
    assert VeRPOAdvantage.requires == frozenset()  # nothing extra for the trainer to compute


def test_advantage_with_an_empty_turn():
    # turn 2 wrote no token (ends [1, 1, 3]): turn 1 -> tokens 0..1, turn 2 -> none,
    # turn 3 -> tokens 2..3. Group of two: scores [1, 0] -> A_traj = [0.5, -0.5];
    # turn rewards [0.3, 0.9, 0.6] and [0.2]: mean = 2.0 / 4 = 0.5
    s0 = Sample("p", "c", completion_ids=[1] * 4, group=0)
    s1 = Sample("p", "c", completion_ids=[1] * 4, group=0)
    outs = [
        RewardOutput(1.0, step_rewards=[0.3, 0.9, 0.6], step_ends=[1, 1, 3]),
        RewardOutput(0.0, step_rewards=[0.2], step_ends=[3]),
    ]
    adv = VeRPOAdvantage()(RolloutBatch.from_samples([s0, s1], outs))
    # row 0: 0.5 + (0.3 - 0.5) = 0.3 twice, then 0.5 + (0.6 - 0.5) = 0.6; row 1: -0.5 - 0.3
    expected = torch.tensor([[0.3, 0.3, 0.6, 0.6], [-0.8, -0.8, -0.8, -0.8]])
    assert torch.allclose(adv, expected, atol=1e-6)


def test_mismatched_tests_in_a_group_and_missing_tests():
    ex = TableExecutor({"a": [1, 0], "b": [1]})
    s2 = Sample("p", "b", meta={"tests": TESTS[:1]})
    with pytest.raises(ValueError, match="different numbers of tests"):
        VeRPOReward(executor=ex)([sample("a"), s2])
    with pytest.raises(KeyError, match="no 'tests'"):
        VeRPOReward(executor=CodeExecutor(backend="local"))([Sample("p", "x", meta={})])
    with pytest.raises(ValueError, match="sigma"):
        VeRPOReward(sigma=0)
    with pytest.raises(ValueError, match="gamma"):
        VeRPOReward(gamma=1.5)


def test_pass_rate_and_binary_use_the_final_attempt():
    ex = TableExecutor({"a": [1, 0], "b": [1, 1]})
    multi = sample("ab", turns=[Turn(0, 1, action="b"), Turn(1, 3, action="a")])
    assert [o.score for o in PassRate(executor=ex)([sample("a"), sample("b"), multi])] == [
        0.5,
        1.0,
        0.5,
    ]
    assert [o.score for o in Binary(executor=ex)([sample("a"), sample("b"), multi])] == [
        0.0,
        1.0,
        0.0,
    ]


def test_registered_under_their_names():
    assert REWARDS.get("code.verpo") is VeRPOReward
    assert REWARDS.get("code.pass_rate") is PassRate
    assert REWARDS.get("code.binary") is Binary
    assert ADVANTAGES.get("code.verpo") is VeRPOAdvantage


def test_real_execution_with_local_backend(local_sandbox, monkeypatch):
    # f(x) = x*x passes both, f(x) = x passes test 1 only, no code block fails both
    ex = CodeExecutor(sandbox=local_sandbox)
    comps = [
        "```python\ndef f(x):\n    return x * x\n```",
        "```python\ndef f(x):\n    return x\n```",
        "def f(x): return x * x",
    ]
    outs = VeRPOReward(executor=ex)([sample(c) for c in comps])
    assert [o.info["pass_matrix"] for o in outs] == [[[1, 1]], [[1, 0]], [[0, 0]]]
    assert outs[2].info["first_error"] == "no code block in the completion"
    # the cache: scoring the same program again runs nothing new
    jobs = []
    real = local_sandbox.run_many
    monkeypatch.setattr(local_sandbox, "run_many", lambda j, **kw: jobs.extend(j) or real(j, **kw))
    assert PassRate(executor=ex)([sample(comps[0]), sample(comps[1] + " ")])[0].score == 1.0
    assert len(jobs) == 0
    assert (
        PassRate(executor=ex)([sample("```python\ndef f(x):\n    return 1\n```")])[0].score == 0.5
    )
    assert len(jobs) == 1
