"""PRIME's online PRM inside `math.implicit_prm`: it learns through the trainer's
learned-reward hook (`learn`), once per train step, on the scored and filtered batch,
never on evaluation batches; `online_update: before` has the trainer score the batch
again with the updated PRM. Its weights and optimizer are checkpoint state."""

import math

import pytest
import torch

from rewardkit.registry import REWARDS, RegistryError
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.rewards.scoring import Scorer, WeightedReward
from rewardkit.tiny import build_tiny_model
from rewardkit.types import RewardOutput, RolloutBatch, Sample
from rewardkit_math.implicit_prm import ImplicitPRM
from rewardkit_math.implicit_reward import ImplicitPRMReward
from rewardkit_math.prime import PRIMEAdvantage

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}
TEXTS = ["5\n\nok \\boxed{5}", "6\n\nno \\boxed{6}", "7\n\nok \\boxed{7}", "9"]
ANSWERS = ["5", "5", "7", "7"]  # samples 0 and 2 are right, 1 and 3 wrong
TRAIN = RewardContext(0, "train")


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


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_scoring_never_trains_learning_does():
    reward = _reward("before")
    samples = _samples(reward.prm.tokenizer)
    before = _params(reward)
    reward(samples)
    reward(samples)
    assert _same(before, _params(reward)) and reward.stats()["prm_updates"] == 0.0
    reward.learn(samples, None, TRAIN)
    assert not _same(before, _params(reward))
    stats = reward.stats()
    assert stats["prm_updates"] == 1.0 and stats["prm_skipped_updates"] == 0.0
    assert stats["prm_label_mean"] == 0.5  # labels 1, 0, 1, 0
    assert stats["prm_loss"] > 0
    reward.learn(samples, None, TRAIN)
    assert reward.stats()["prm_updates"] == 2.0
    assert reward.scores_after_learning and not _reward("after").scores_after_learning
    none = _reward("none")
    none.learn(samples, None, TRAIN)  # online_update none: nothing learns
    assert none.stats()["prm_updates"] == 0.0


def test_first_ce_loss_is_log_2_when_policy_equals_reference():
    # pi_theta = pi_ref (same seed): every log-ratio is 0, sigma(0) = 1/2, and the BCE of
    # 1/2 is -log(1/2) = log 2 = 0.693147 for either label
    reward = _reward("after", policy_seed=3, ref_seed=3)
    samples = _samples(reward.prm.tokenizer)
    outputs = reward(samples)
    reward.learn(samples, None, TRAIN)
    assert reward.stats()["prm_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert all(o.score == pytest.approx(0.0, abs=1e-7) for o in outputs)  # scored before


def test_labels_come_from_the_runs_scores_when_it_has_the_label_reward():
    policy, tok = build_tiny_model(seed=1, **TINY)
    ref, _ = build_tiny_model(seed=2, **TINY)
    reward = ImplicitPRMReward(
        prm=ImplicitPRM(policy, ref, tok),
        score="zero",
        online_update="after",
        label_reward="math.accuracy",
        label_options={"num_workers": 1},
    )
    samples = _samples(tok)

    class Scored:  # what the trainer passes: the run's raw scores by reward name
        raw = {"math.accuracy": [0.0, 1.0, 1.0, 1.0]}

    assert reward.labels(samples, Scored()) == [0.0, 1.0, 1.0, 1.0]  # not recomputed


def test_accuracy_band_selects_the_update_samples():
    # groups {0, 1} and {2, 3}; labels 1 0 | 1 1: accuracies 0.5 (inside (0.2, 0.8)) and
    # 1.0 (outside): the step trains on samples 0 and 1 only
    reward = _reward("before", labels=(1.0, 0.0, 1.0, 1.0), update_band=[0.2, 0.8])
    samples = _samples(reward.prm.tokenizer)
    reward.learn(samples, None, TRAIN)
    assert reward.stats()["prm_update_samples"] == 2.0
    assert reward.stats()["prm_label_mean"] == 0.5
    twin = _reward("none").prm  # the same initial PRM, trained by hand on samples 0 and 1
    twin.train_step(samples[:2], [1.0, 0.0], [0, 0])
    for a, b in zip(reward.prm.model.parameters(), twin.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # labels 1 1 | 0 0: both accuracies (1.0 and 0.0) are outside the band: no step
    flat = _reward("before", labels=(1.0, 1.0, 0.0, 0.0), update_band=[0.2, 0.8])
    flat.learn(samples, None, TRAIN)
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
    assert [o.score for o in reward(samples)] == [0.0] * 4
    reward.learn(samples, None, TRAIN)
    assert reward.stats()["prm_label_mean"] == 0.5


def test_state_round_trip_continues_like_the_original():
    """state_dict -> load_state_dict (a checkpoint): the same weights, the same optimizer
    moments, so the next update lands exactly where the uninterrupted one does."""
    samples = _samples(build_tiny_model(seed=1, **TINY)[1])
    original = _reward("before")
    original.learn(samples, None, TRAIN)
    state = original.state_dict()
    restored = _reward("before")  # a fresh run, then resumed
    assert not _same(_params(original), _params(restored))
    restored.load_state_dict(state)
    assert _same(_params(original), _params(restored))
    assert restored.stats() == original.stats()
    original.learn(samples, None, TRAIN)
    restored.learn(samples, None, TRAIN)
    assert _same(_params(original), _params(restored))  # Adam's moments were restored too
    fresh_optimizer = _reward("before")
    fresh_optimizer.prm.model.load_state_dict(state["model"])
    fresh_optimizer.learn(samples, None, TRAIN)
    assert not _same(_params(original), _params(fresh_optimizer))  # ... and they matter


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
    assert _same(list(reward.prm.model.parameters()), list(reward.prm.ref_model.parameters()))
    samples = _samples(reward.prm.tokenizer)
    scorer = Scorer([WeightedReward("math.implicit_prm", reward)])
    result = scorer(samples, TRAIN)
    assert all(v == 0 for o in result.outputs for v in o.token_rewards)  # pi_theta = pi_ref
    reward.learn(samples, result, TRAIN)
    result = scorer.rescore(samples, result, {"math.implicit_prm"}, TRAIN)
    stats = scorer.reward_stats()
    scorer.close()
    assert stats["reward/math.implicit_prm/prm_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert stats["reward/math.implicit_prm/prm_updates"] == 1.0
    # scored again after the step: the token rewards are no longer all zero
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
    reward = _reward("before", labels=(1.0,))  # one label for four samples
    with pytest.raises(ValueError, match="1 values for 4 samples"):
        reward.learn(_samples(reward.prm.tokenizer), None, TRAIN)
    with pytest.raises(ValueError, match="label_reward"):
        ImplicitPRMReward(prm=reward.prm, online_update="after", label_reward=42)
    with pytest.raises(RegistryError, match="unknown reward 'math.nope'"):
        ImplicitPRMReward(prm=reward.prm, online_update="after", label_reward="math.nope")


# -- through the trainer's hook -------------------------------------------------------------


def first_k_right(samples):
    """A stand-in verifier: in each group the first (answer mod 5) samples are right."""
    seen: dict[int, int] = {}
    out = []
    for s in samples:
        k = seen.get(s.group, 0)
        seen[s.group] = k + 1
        out.append(1.0 if k < int(s.meta["answer"]) % 5 else 0.0)
    return out


def test_the_trainer_hook_learns_once_per_step_on_the_kept_batch_and_never_in_eval(tmp_path):
    """PRIME's Algorithm 1 through the trainer: the band keeps prompts with accuracy in
    (0.2, 0.8) (resampling as needed), the PRM takes one step on exactly those samples,
    the batch is scored again by the updated PRM (online_update: before), evaluation
    leaves the PRM alone, and a checkpoint restores it."""
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    if "test.first_k_right" not in REWARDS._builtins:
        REWARDS.register("test.first_k_right", first_k_right)
    config = GRPOConfig(
        model="tiny",
        tiny_model=TINY,
        task="core.arith",
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=3,
        eval_size=3,
        advantage="math.prime",
        rewards=[
            {"name": "test.first_k_right"},
            {
                "name": "math.implicit_prm",
                "options": {
                    "model": "tiny",
                    "tiny_model": {**TINY, "seed": 4},
                    "score": "zero",
                    "online_update": "before",
                    "label_reward": "test.first_k_right",
                    "lr": 1e-2,
                },
            },
        ],
        group_filter="math.accuracy_band",
        group_filter_options={"reward": "test.first_k_right"},
        max_resample_rounds=30,
        output_dir=str(tmp_path),
        report_to=[],
        progress=False,
    )
    trainer = GRPOTrainer(config)
    prm = trainer.reward_objects["math.implicit_prm"]
    start = _params(prm)
    trainer.evaluate()
    assert _same(start, _params(prm)) and prm.stats()["prm_updates"] == 0.0
    samples, scored, stats = trainer.sample_and_score()
    assert stats["group_filter/unfiltered"] == 0.0
    rescored = trainer.learn_rewards(samples, scored)
    assert prm.stats()["prm_updates"] == 1.0
    assert prm.stats()["prm_update_samples"] == len(samples) == 8  # the kept groups only
    assert 0.2 < prm.stats()["prm_label_mean"] < 0.8
    now = [o.token_rewards for o in prm(samples)]
    assert [o.token_rewards for o in rescored.per_reward["math.implicit_prm"]] == now
    assert [o.token_rewards for o in scored.per_reward["math.implicit_prm"]] != now
    metrics = trainer.train_step()  # one step, however many resampling rounds it took
    assert (
        prm.stats()["prm_updates"] == 2.0 and metrics["reward/math.implicit_prm/prm_updates"] == 2
    )
    trainer.step = 2
    trainer.save_checkpoint()
    resumed = GRPOTrainer(GRPOConfig(**{**config.to_dict(), "resume_from": "latest"}))
    resumed_prm = resumed.reward_objects["math.implicit_prm"]
    assert _same(_params(prm), _params(resumed_prm))
    assert resumed_prm.stats() == prm.stats()
    trainer.scorer.close()
    resumed.scorer.close()
