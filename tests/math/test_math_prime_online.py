"""PRIME's online PRM update inside `math.implicit_prm` (option `online_update`): the PRM
trains on verifier labels at every call, before or after scoring, and logs its loss."""

import math

import pytest
import torch

from rewardkit.registry import REWARDS, RegistryError
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.scoring import Scorer, WeightedReward
from rewardkit.tiny import build_tiny_model
from rewardkit.types import RewardOutput, RolloutBatch, Sample
from rewardkit_math.implicit_prm import ImplicitPRM
from rewardkit_math.implicit_reward import ImplicitPRMReward
from rewardkit_math.prime import PRIMEAdvantage

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}
TEXTS = ["5\n\nok \\boxed{5}", "6\n\nno \\boxed{6}", "7\n\nok \\boxed{7}", "9"]
ANSWERS = ["5", "5", "7", "7"]  # samples 0 and 2 are right, 1 and 3 wrong


def _samples(tok, groups=(0, 0, 1, 1)):
    return [
        Sample(
            "Q:",
            t,
            prompt_ids=[tok.bos_token_id],
            completion_ids=tok(t, add_special_tokens=False)["input_ids"],
            group=g,
            meta={"answer": a},
        )
        for t, a, g in zip(TEXTS, ANSWERS, groups, strict=True)
    ]


def _fixed_labels(values):
    """A stand-in verifier: returns fixed scores (the tests of ordering need no sympy)."""
    return lambda samples: [RewardOutput(v) for v in values[: len(samples)]]


def _reward(online, policy_seed=1, ref_seed=2, labels=(1.0, 0.0, 1.0, 0.0), **kw):
    policy, tok = build_tiny_model(seed=policy_seed, **TINY)
    ref, _ = build_tiny_model(seed=ref_seed, **TINY)
    prm = ImplicitPRM(policy, ref, tok, beta=0.5, lr=5e-2)
    return ImplicitPRMReward(
        prm=prm, score="outcome", online_update=online, label_reward=_fixed_labels(labels), **kw
    )


def _params(reward):
    return [p.detach().clone() for p in reward.prm.model.parameters()]


def test_update_changes_the_prm_and_logs_the_loss():
    reward = _reward("before")
    samples = _samples(reward.prm.tokenizer)
    before = _params(reward)
    outputs = reward(samples)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, reward.prm.model.parameters(), strict=True)
    )
    stats = reward.stats()
    assert stats["prm_updates"] == 1.0 and stats["prm_skipped_updates"] == 0.0
    assert stats["prm_label_mean"] == 0.5  # labels 1, 0, 1, 0
    assert stats["prm_loss"] > 0
    assert [o.info["prm_label"] for o in outputs] == [1.0, 0.0, 1.0, 0.0]
    assert all(o.info["prm_loss"] == stats["prm_loss"] for o in outputs)
    reward(samples)
    assert reward.stats()["prm_updates"] == 2.0


def test_first_ce_loss_is_log_2_when_policy_equals_reference():
    # pi_theta = pi_ref (same seed): every log-ratio is 0, sigma(0) = 1/2, and the BCE of
    # 1/2 is -log(1/2) = log 2 = 0.693147 for either label
    reward = _reward("after", policy_seed=3, ref_seed=3)
    outputs = reward(_samples(reward.prm.tokenizer))
    assert reward.stats()["prm_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert all(o.score == pytest.approx(0.0, abs=1e-7) for o in outputs)  # scored before the step


def test_before_and_after_give_different_scores():
    samples = _samples(build_tiny_model(seed=1, **TINY)[1])
    none = [o.score for o in _reward("none")(samples)]
    after_reward = _reward("after")
    after = [o.score for o in after_reward(samples)]
    before = [o.score for o in _reward("before")(samples)]
    # "after" scores with the PRM as it was: the same as no update at all
    assert after == pytest.approx(none, abs=1e-6)
    # "before" scores with the updated PRM: different, and equal to what the "after"
    # reward's PRM (updated by the same step on the same data) now gives
    assert not before == pytest.approx(after, abs=1e-4)
    now = [o.score for o in ImplicitPRMReward(prm=after_reward.prm, score="outcome")(samples)]
    assert before == pytest.approx(now, abs=1e-5)
    # and the step moved the right way: correct samples up relative to wrong ones
    assert before[0] - after[0] > before[1] - after[1]


def test_no_update_on_one_sample_per_prompt():
    # the trainer's greedy evaluation scores one rollout per prompt through the same reward
    reward = _reward("before")
    before = _params(reward)
    outputs = reward(_samples(reward.prm.tokenizer, groups=(0, 1, 2, 3)))
    assert all(
        torch.equal(a, b) for a, b in zip(before, reward.prm.model.parameters(), strict=True)
    )
    assert reward.stats() == {"prm_updates": 0.0, "prm_skipped_updates": 1.0}
    assert "prm_loss" not in outputs[0].info and outputs[0].info["prm_label"] == 1.0


def test_accuracy_band_selects_the_update_samples():
    # groups {0, 1} and {2, 3}; labels 1 0 | 1 1: accuracies 0.5 (inside (0.2, 0.8)) and
    # 1.0 (outside): the step trains on samples 0 and 1 only
    reward = _reward("before", labels=(1.0, 0.0, 1.0, 1.0), update_band=[0.2, 0.8])
    samples = _samples(reward.prm.tokenizer)
    reward(samples)
    assert reward.stats()["prm_update_samples"] == 2.0
    assert reward.stats()["prm_label_mean"] == 0.5
    twin = _reward("none").prm  # the same initial PRM, trained by hand on samples 0 and 1
    twin.train_step(samples[:2], [1.0, 0.0], [0, 0])
    for a, b in zip(reward.prm.model.parameters(), twin.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # labels 1 1 | 0 0: both accuracies (1.0 and 0.0) are outside the band: no step
    flat = _reward("before", labels=(1.0, 1.0, 0.0, 0.0), update_band=[0.2, 0.8])
    flat(samples)
    assert flat.stats()["prm_skipped_updates"] == 1.0 and flat.stats()["prm_updates"] == 0.0


def test_labels_come_from_math_accuracy(accuracy):
    policy, tok = build_tiny_model(seed=1, **TINY)
    ref, _ = build_tiny_model(seed=2, **TINY)
    reward = ImplicitPRMReward(
        prm=ImplicitPRM(policy, ref, tok),
        score="zero",
        online_update="after",
        label_reward=accuracy,
    )
    samples = _samples(tok)
    assert reward.labels(samples) == [1.0, 0.0, 1.0, 0.0]  # boxed 5 = 5, 6 != 5, 7 = 7, none
    outputs = reward(samples)
    assert [o.score for o in outputs] == [0.0] * 4
    assert reward.stats()["prm_label_mean"] == 0.5


def test_registry_options_build_a_tiny_prm_with_the_verifier():
    reward = build_reward(
        REWARDS.get("math.implicit_prm"),
        model="tiny",
        tiny_model={**TINY, "seed": 4},
        score="zero",
        online_update="before",
        label_options={"timeout": 3.0, "num_workers": 1},
        lr=1e-2,
    )
    # the reference defaults to the same tiny model: pi_theta = pi_ref at the start
    first = [
        torch.equal(a, b)
        for a, b in zip(
            reward.prm.model.parameters(), reward.prm.ref_model.parameters(), strict=True
        )
    ]
    assert all(first)
    samples = _samples(reward.prm.tokenizer)
    scorer = Scorer([WeightedReward("math.implicit_prm", reward)])
    result = scorer(samples)
    stats = scorer.reward_stats()
    scorer.close()
    assert stats["reward/math.implicit_prm/prm_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert stats["reward/math.implicit_prm/prm_updates"] == 1.0
    # scored after the step: the token rewards are no longer all zero
    assert any(abs(v) > 0 for o in result.outputs for v in o.token_rewards)
    # and PRIME's estimator takes the merged outputs (outcome from a separate verifier)
    batch = RolloutBatch.from_samples(samples, result.outputs, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    adv = PRIMEAdvantage()(batch)
    assert adv.shape == batch.completion_mask.shape and torch.isfinite(adv).all()


def test_online_bad_input():
    with pytest.raises(ValueError, match="online_update"):
        _reward("during")
    with pytest.raises(ValueError, match="update_band"):
        _reward("before", update_band=[0.8, 0.2])
    with pytest.raises(ValueError, match="update_min_group_size"):
        _reward("before", update_min_group_size=0)
    reward = _reward("before", labels=(1.0,))  # one label for four samples
    with pytest.raises(ValueError, match="1 values for 4 samples"):
        reward(_samples(reward.prm.tokenizer))
    with pytest.raises(ValueError, match="label_reward"):
        ImplicitPRMReward(prm=reward.prm, online_update="after", label_reward=42)
    with pytest.raises(RegistryError, match="unknown reward 'math.nope'"):
        ImplicitPRMReward(prm=reward.prm, online_update="after", label_reward="math.nope")
