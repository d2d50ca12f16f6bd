"""Multi-turn mode: feedback of failing tests between attempts, early stop on success."""

import pytest

from rewardkit.types import RolloutBatch
from rewardkit_code.execution import CodeExecutor
from rewardkit_code.multiturn import CodeFeedbackEnv, format_feedback, rollout
from rewardkit_code.sandbox import TestOutcome
from rewardkit_code.verpo import VeRPOAdvantage, VeRPOReward

ROW = {
    "tests": [
        {"type": "assert", "code": "assert f(2) == 4"},
        {"type": "assert", "code": "assert f(3) == 9, 'f(3) should be 9'"},
    ]
}
WRONG = "```python\ndef f(x):\n    return x + 2\n```"  # passes test 1 only
RIGHT = "```python\ndef f(x):\n    return x * x\n```"


def words(text):
    return text.split()


def scripted(*answers):
    seen = []

    def policy(context):
        seen.append(context)
        return answers[len(seen) - 1]

    return policy, seen


def test_feedback_then_early_stop(local_sandbox, monkeypatch):
    env = CodeFeedbackEnv(max_turns=3, executor=CodeExecutor(sandbox=local_sandbox))
    policy, seen = scripted(WRONG, RIGHT, "never asked")
    s = rollout(policy, ROW, env, "Write f.\n", words)
    assert len(s.turns) == 2  # stopped once all tests passed
    fb = s.turns[0].observation
    assert "passed 1 of 2 tests" in fb and "test 2: fail" in fb and "f(3) should be 9" in fb
    assert fb in seen[1]  # the second attempt saw the feedback
    assert s.turns[1].observation == ""
    # mask: action tokens 1, feedback tokens 0
    n0 = len(words(WRONG))
    assert s.completion_mask[:n0] == [1] * n0 and set(s.completion_mask[n0 : s.turns[0].end]) == {0}
    # the reward, with its own executor on the same sandbox, reuses the env's results
    jobs = []
    real = local_sandbox.run_many
    monkeypatch.setattr(local_sandbox, "run_many", lambda j, **kw: jobs.extend(j) or real(j, **kw))
    outs = VeRPOReward(executor=CodeExecutor(sandbox=local_sandbox))([s])
    assert jobs == []
    assert outs[0].info["pass_matrix"] == [[1, 0], [1, 1]]
    assert outs[0].score == pytest.approx(0.81)  # solved in 2 turns, gamma = 0.9
    adv = VeRPOAdvantage()(RolloutBatch.from_samples([s], outs))
    assert adv.shape == (1, len(s.completion_ids))
    assert (adv[0][torch_mask(s)] == 0).all()


def torch_mask(s):
    import torch

    return torch.tensor(s.completion_mask) == 0


def test_stops_after_max_turns(local_sandbox):
    env = CodeFeedbackEnv(max_turns=2, executor=CodeExecutor(sandbox=local_sandbox))
    policy, seen = scripted(WRONG, "no code at all", RIGHT)
    s = rollout(policy, ROW, env, "Write f.\n", words)
    assert len(s.turns) == 2 and len(seen) == 2
    assert s.turns[-1].observation == ""  # done: no feedback after the last attempt
    with pytest.raises(RuntimeError, match="over"):
        env.step(RIGHT)


def test_feedback_truncation_and_env_errors():
    outs = [TestOutcome("fail", "x" * 500)] * 8 + [TestOutcome("pass")]
    text = format_feedback(outs, max_failures=3)
    assert "passed 1 of 9" in text and "and 5 more failing tests" in text and "x" * 198 not in text
    assert len(format_feedback(outs, max_chars=100)) == 100
    env = CodeFeedbackEnv(executor=CodeExecutor(backend="local"))
    with pytest.raises(RuntimeError, match="reset"):
        env.step("x")
    with pytest.raises(KeyError, match="no 'tests'"):
        env.reset({})
    with pytest.raises(ValueError, match="max_turns"):
        CodeFeedbackEnv(max_turns=0)
