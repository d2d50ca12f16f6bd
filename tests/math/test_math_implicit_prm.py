"""Implicit PRM: formulas on hand-computed log-probs, q_T, CE/DPO losses, training."""

import json
import math

import pytest
import torch

from rewardkit.registry import REWARDS
from rewardkit.rewards.base import build_reward
from rewardkit.tiny import build_tiny_model
from rewardkit.types import Sample
from rewardkit_math.implicit_prm import (
    ImplicitPRM,
    best_of_n_score,
    ce_loss,
    dpo_loss,
    q_values,
    step_rewards,
    token_rewards,
)
from rewardkit_math.implicit_reward import ImplicitPRMReward
from rewardkit_math.train_implicit_prm import load_examples, main, train

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}

# -- formulas ----------------------------------------------------------------------------


def test_token_q_and_step_rewards_by_hand():
    policy = torch.tensor([[-1.0, -2.0, -0.5, -0.1]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, -0.6]])
    mask = torch.tensor([[1, 1, 0, 1]])
    r = token_rewards(policy, ref, mask, beta=0.5)
    # 0.5 * (0.5, -1.0, masked, 0.5) = (0.25, -0.5, 0, 0.25)
    assert r.tolist() == [[0.25, -0.5, 0.0, 0.25]]
    q = q_values(r)
    assert q.tolist() == [[0.25, -0.25, -0.25, 0.0]]
    # steps ending at tokens 0 and 3: q[0] - 0 = 0.25, q[3] - q[0] = -0.25
    assert step_rewards(q[0], [0, 3]) == [0.25, -0.25]
    # q_T = beta * sum of masked log-ratios = 0.5 * (0.5 - 1.0 + 0.5) = 0
    assert q[0, -1].item() == pytest.approx(0.5 * (0.5 - 1.0 + 0.5))


def test_formula_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        token_rewards(torch.zeros(1, 3), torch.zeros(1, 2), torch.ones(1, 3), 0.1)
    with pytest.raises(ValueError, match="increase"):
        step_rewards([0.1, 0.2, 0.3], [2, 1])
    with pytest.raises(ValueError, match="increase"):
        step_rewards([0.1, 0.2], [5])
    with pytest.raises(ValueError, match="min"):
        best_of_n_score([0.1], "mean")


def test_best_of_n_score():
    assert best_of_n_score([0.1, -0.2, 0.3], "min") == -0.2
    assert best_of_n_score([0.1, -0.2, 0.3], "sum") == pytest.approx(0.2)
    assert best_of_n_score([], "min") == 0.0


def test_ce_loss_by_hand():
    # logits beta*(policy - ref) = 0.5 * (1, -1) = (0.5, -0.5); both labels 1
    # -log sigmoid(0.5) = log(1 + e^-0.5) = 0.474077; -log sigmoid(-0.5) = log(1 + e^0.5) = 0.974077
    loss = ce_loss(
        torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0]), torch.tensor([1, 1]), 0.5
    )
    assert loss.item() == pytest.approx((0.474077 + 0.974077) / 2, abs=1e-6)
    # label 0 on the second: -log(1 - sigmoid(-0.5)) = 0.474077
    loss = ce_loss(
        torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0]), torch.tensor([1, 0]), 0.5
    )
    assert loss.item() == pytest.approx(0.474077, abs=1e-6)


def test_dpo_loss_by_hand():
    # log-ratios (policy - ref) = (1, -1, 0, 2); group 0 = samples 0,1,2 with labels 1,0,0;
    # group 1 = sample 3 alone (no pair). Pairs (0,1), (0,2): margins 0.5*(1+1) = 1.0 and
    # 0.5*(1-0) = 0.5; -log sigmoid(1) = 0.313262, -log sigmoid(0.5) = 0.474077
    policy = torch.tensor([1.0, -1.0, 0.0, 2.0])
    loss, pairs = dpo_loss(
        policy, torch.zeros(4), torch.tensor([1, 0, 0, 1]), torch.tensor([0, 0, 0, 1]), 0.5
    )
    assert pairs == 2
    assert loss.item() == pytest.approx((0.313262 + 0.474077) / 2, abs=1e-6)
    loss, pairs = dpo_loss(policy, torch.zeros(4), torch.ones(4), torch.zeros(4), 0.5)
    assert pairs == 0 and loss.item() == 0.0


# -- with tiny models --------------------------------------------------------------------


@pytest.fixture()
def prm():
    policy, tok = build_tiny_model(seed=1, **TINY)
    ref, _ = build_tiny_model(seed=2, **TINY)
    return ImplicitPRM(policy, ref, tok, beta=0.05, lr=1e-2)


def _sequence_logprob(model, prompt_ids, completion_ids):
    """log pi(y|x) from the model's own loss: mean NLL over the labelled tokens times their count."""
    ids = torch.tensor([prompt_ids + completion_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + completion_ids])
    with torch.no_grad():
        return -model(input_ids=ids, labels=labels).loss.item() * len(completion_ids)


def test_q_T_equals_the_sequence_log_ratio(prm):
    tok = prm.tokenizer
    prompt = [tok.bos_token_id] + tok("Q: 2+3=", add_special_tokens=False)["input_ids"]
    completion = tok("5\n\nso 5", add_special_tokens=False)["input_ids"]
    sample = Sample("Q: 2+3=", "5\n\nso 5", prompt_ids=prompt, completion_ids=completion)
    reward = ImplicitPRMReward(prm=prm, score="outcome")
    [out] = reward([sample])
    expected = 0.05 * (
        _sequence_logprob(prm.model, prompt, completion)
        - _sequence_logprob(prm.ref_model, prompt, completion)
    )
    assert out.score == pytest.approx(expected, abs=1e-5)
    assert sum(out.token_rewards) == pytest.approx(expected, abs=1e-5)
    # characters 5 | \n \n | s o ' ' 5: steps "5" and "so 5" end at tokens 0 and 6;
    # step rewards are the q differences q[0] - 0 and q[6] - q[0]
    assert out.step_ends == [0, 6]
    q = torch.tensor(out.token_rewards).cumsum(0)
    assert out.step_rewards == pytest.approx([q[0].item(), (q[6] - q[0]).item()], abs=1e-6)
    assert out.score != 0.0  # two different random models do disagree


def test_environment_tokens_get_no_reward(prm):
    tok = prm.tokenizer
    ids = tok("ab\n\ncd", add_special_tokens=False)["input_ids"]
    s = Sample("Q", "ab\n\ncd", completion_ids=ids, completion_mask=[1, 1, 0, 0, 1, 1])
    [r] = prm.token_rewards([s])
    assert r[2] == 0.0 and r[3] == 0.0 and r[0] != 0.0


def test_reward_score_modes(prm):
    samples = [Sample("Q: 1+1=", "2\n\nok"), Sample("Q: 1+1=", "3")]
    by_mode = {m: ImplicitPRMReward(prm=prm, score=m)(samples) for m in ("min", "sum", "zero")}
    for i in range(2):
        steps = by_mode["min"][i].step_rewards
        assert by_mode["min"][i].score == pytest.approx(min(steps))
        assert by_mode["sum"][i].score == pytest.approx(sum(steps))
        assert by_mode["zero"][i].score == 0.0
    with pytest.raises(ValueError, match="score"):
        ImplicitPRMReward(prm=prm, score="max")
    with pytest.raises(ValueError, match="ref_model"):
        ImplicitPRMReward(model="x")


def _toy_data():
    samples, labels = [], []
    for g, (a, b) in enumerate([(2, 3), (1, 4), (3, 3)]):
        q = f"Q: {a}+{b}="
        samples += [Sample(q, f"{a + b}\n\nok", group=g), Sample(q, f"{a + b + 1}\n\nok", group=g)]
        labels += [1.0, 0.0]
    return samples, labels


@pytest.mark.parametrize("loss", ["ce", "dpo"])
def test_training_separates_correct_from_incorrect(loss):
    policy, tok = build_tiny_model(seed=1, **TINY)
    ref, _ = build_tiny_model(seed=1, **TINY)  # the usual start: pi_theta = pi_ref
    prm = ImplicitPRM(policy, ref, tok, beta=0.5, loss=loss, lr=1e-2)
    samples, labels = _toy_data()
    reward = ImplicitPRMReward(prm=prm, score="outcome")
    assert all(o.score == pytest.approx(0.0, abs=1e-6) for o in reward(samples))  # q_T = 0 at start
    history = train(prm, samples, labels, epochs=15, batch_size=6)
    scores = [o.score for o in reward(samples)]
    assert history[-1]["loss"] < history[0]["loss"]
    for i in range(0, 6, 2):
        assert scores[i] > scores[i + 1], scores  # correct above incorrect, every prompt


def test_training_entry_point(tmp_path):
    build_tiny_model(tmp_path / "init", seed=3, **TINY)
    data = tmp_path / "train.jsonl"
    samples, labels = _toy_data()
    data.write_text(
        "".join(
            json.dumps({"prompt": s.prompt, "completion": s.completion, "label": int(y)}) + "\n"
            for s, y in zip(samples, labels, strict=True)
        )
    )
    history = main(
        [
            "--model",
            str(tmp_path / "init"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--beta",
            "0.5",
            "--lr",
            "1e-2",
            "--epochs",
            "4",
            "--batch-size",
            "6",
        ]
    )
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert len((tmp_path / "out" / "metrics.jsonl").read_text().splitlines()) == 4
    reward = build_reward(
        REWARDS.get("math.implicit_prm"),
        model=str(tmp_path / "out"),
        ref_model=str(tmp_path / "init"),
        beta=0.5,
        score="outcome",
    )
    scores = [o.score for o in reward(samples)]
    assert scores[0] > scores[1] and not math.isclose(scores[0], 0.0, abs_tol=1e-6)


def test_load_examples_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    with pytest.raises(ValueError, match="missing \\['label'\\]"):
        load_examples(bad)
    bad.write_text(json.dumps({"prompt": "p", "completion": "c", "label": 0.5}) + "\n")
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        load_examples(bad)
