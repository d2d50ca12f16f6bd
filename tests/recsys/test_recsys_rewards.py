"""SRPO's reward `recsys.id_match` and advantage `recsys.bgae` on hand-computed numbers."""

from __future__ import annotations

import pytest
import torch

from rewardkit.registry import ADVANTAGES, REWARDS, TASKS
from rewardkit.types import RewardOutput, RolloutBatch, Sample
from rewardkit_recsys.advantage import BGAE, binom, passk_bonus
from rewardkit_recsys.rewards import IdMatchReward, parse_prediction

TRUE4 = "<|a_1|><|b_2|><|c_3|><|d_4|>"
TRUE5 = "<|a_1|><|b_2|><|c_3|><|d_4|><|e_2|>"


def score(completion: str, target_id: str = TRUE4, row_mode: str = "direct", **options) -> float:
    meta = {"target_id": target_id, "mode": row_mode}
    sample = Sample(prompt="p", completion=completion, meta=meta)
    out = IdMatchReward(**options)([sample])[0]
    assert isinstance(out, RewardOutput)
    return out.score


def test_registered_through_entry_points():
    assert REWARDS.get("recsys.id_match") is IdMatchReward
    assert ADVANTAGES.get("recsys.bgae") is BGAE
    assert TASKS.get("recsys.movielens").__name__ == "MovieLens"


@pytest.mark.parametrize(
    ("completion", "target", "expected"),
    [
        (TRUE4, TRUE4, 1.0),  # exact match
        (" " + TRUE4 + "\n", TRUE4, 1.0),  # surrounding whitespace is fine
        ("<|a_1|><|b_9|><|c_3|><|d_4|>", TRUE4, 0.5),  # m = 1 → table[0]
        ("<|a_1|><|b_2|><|c_9|><|d_4|>", TRUE4, 0.707),  # m = 2 → table[1]
        ("<|a_1|><|b_2|><|c_3|><|d_9|>", TRUE4, 0.866),  # m = 3 → table[2]
        (TRUE4, TRUE5, 0.95),  # m = 4 (collision suffix missing) → table[3]
        (TRUE5, TRUE4, 0.95),  # m = 4, a suffix too many → not exact
        ("<|a_1|><|b_2|><|c_3|><|d_4|><|e_1|>", TRUE5, 0.95),  # wrong suffix, m = 4
        ("<|a_2|><|b_2|><|c_3|><|d_4|>", TRUE4, 0.0),  # m = 0
        ("", TRUE4, 0.0),  # no ID
        ("<|a_1|> <|b_2|><|c_3|><|d_4|>", TRUE4, 0.0),  # stray space: format invalid
        ("ID: " + TRUE4, TRUE4, 0.0),  # extra text: format invalid
        ("<|b_2|><|a_1|><|c_3|><|d_4|>", TRUE4, 0.0),  # levels out of order
        ("<think>x</think><answer>" + TRUE4 + "</answer>", TRUE4, 0.0),  # wrong mode
    ],
)
def test_id_match_direct(completion, target, expected):
    assert score(completion, target) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>likes drama</think><answer>" + TRUE4 + "</answer>", 1.0),
        ("<think>a\nb</think>\n<answer><|a_1|><|b_2|></answer>", 0.707),  # m = 2
        ("<answer>" + TRUE4 + "</answer>", 0.0),  # no think
        ("<think> </think><answer>" + TRUE4 + "</answer>", 0.0),  # empty think
        ("<think>x</think><answer>" + TRUE4 + "</answer> more", 0.0),  # trailing text
        ("<think>x</think><answer>movie 7</answer>", 0.0),  # no ID parsed
        (TRUE4, 0.0),  # bare ID in reasoning mode
    ],
)
def test_id_match_reasoning(completion, expected):
    assert score(completion, row_mode="reasoning") == pytest.approx(expected)
    forced = score(completion, row_mode="direct", mode="reasoning")  # option beats the row
    assert forced == pytest.approx(expected)


def test_id_match_bad_input():
    with pytest.raises(KeyError, match="target_id"):
        IdMatchReward()([Sample(prompt="p", completion=TRUE4)])
    with pytest.raises(ValueError, match="mode"):
        IdMatchReward(mode="loose")
    with pytest.raises(ValueError, match="row mode"):
        score(TRUE4, row_mode="chat")
    with pytest.raises(ValueError, match="credit"):
        IdMatchReward(credit=[0.5, 2.0])
    assert parse_prediction(TRUE4, "direct") == ["<|a_1|>", "<|b_2|>", "<|c_3|>", "<|d_4|>"]


def batch(scores, groups, lengths=None) -> RolloutBatch:
    lengths = lengths or [3] * len(scores)
    mask = torch.zeros(len(scores), max(lengths))
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    return RolloutBatch(
        scores=torch.tensor(scores, dtype=torch.float),
        groups=torch.tensor(groups),
        completion_mask=mask,
    )


def test_binom_out_of_range_is_zero():
    assert (binom(4, 2), binom(2, 3), binom(3, -1), binom(0, 0)) == (6, 0, 0, 1)


def test_bgae_one_hit_in_four_k2():
    # s = [1, .5, 0, 0], n = 4, c = 1, K = 2
    # mean = .375; deviations .625 .125 −.375 −.375; Σ sq = .6875; std = sqrt(.6875/3) = .478714
    # z = [1.305580, .261116, −.783348, −.783348]
    # ρ = 1 − C(3,2)/C(4,2) = 1 − 3/6 = .5; σ = sqrt(.5·.5) = .5
    # hit: (1 − .5)/(.5 + 1e-6) = .999998
    # miss: (1 − .5 − C(2,1)/C(3,1))/(.5 + 1e-6) = (.5 − 2/3)/.500001 = −.333333
    adv = BGAE(k=2)(batch([1.0, 0.5, 0.0, 0.0], [0, 0, 0, 0]))
    expected = [
        1.305580 + 0.999998,
        0.261116 - 0.333333,
        -0.783348 - 0.333333,
        -0.783348 - 0.333333,
    ]
    assert adv[:, 0].tolist() == pytest.approx(expected, abs=1e-5)
    assert (adv == adv[:, :1]).all()  # broadcast over the tokens


def test_bgae_two_hits_in_eight_default_k4():
    # s = [1, 1, 0 × 6], n = 8, c = 2, K = 4
    # mean = .25; Σ sq = 2·.75² + 6·.25² = 1.5; std = sqrt(1.5/7) = .462910
    # z hit = .75/.462911 = 1.620182; z miss = −.25/.462911 = −.540061
    # ρ = 1 − C(6,4)/C(8,4) = 1 − 15/70 = .785714; σ = sqrt(.785714·.214286) = .410326
    # hit bonus = .214286/.410327 = .522232
    # miss bonus = (.214286 − C(5,3)/C(7,3))/.410327 = (.214286 − 10/35)/.410327 = −.174077
    adv = BGAE()(batch([1.0, 1.0] + [0.0] * 6, [0] * 8))[:, 0].tolist()
    assert adv[:2] == pytest.approx([1.620182 + 0.522232] * 2, abs=1e-5)
    assert adv[2:] == pytest.approx([-0.540061 - 0.174077] * 6, abs=1e-5)
    assert passk_bonus(8, 2, 4, hit=True) == pytest.approx(0.522232, abs=1e-6)


def test_bgae_no_hit_gives_plain_z_score():
    # c = 0 → bonus 0. s = [.5, 0, 0, 0]: mean .125, Σ sq = .140625 + 3·.015625 = .1875,
    # std = sqrt(.1875/3) = .25; z = [.375/.250001, −.125/.250001] = [1.499994, −.499998]
    adv = BGAE(k=2)(batch([0.5, 0.0, 0.0, 0.0], [3, 3, 3, 3]))[:, 0].tolist()
    assert adv == pytest.approx([1.499994, -0.499998, -0.499998, -0.499998], abs=1e-6)


def test_bgae_all_hits_gives_zero():
    # c = n → bonus 0 and std = 0 → every advantage 0
    adv = BGAE(k=2)(batch([1.0] * 4, [0] * 4))
    assert torch.equal(adv, torch.zeros(4, 3))


def test_bgae_groups_interleaved_and_mask_respected():
    # group 5 = samples 0, 2 ([1, 0]), group 2 = samples 1, 3 ([0, 0]); K = 1
    # group 5: mean .5, std = sqrt(.5/1) = .707107; z = ±.707106
    #   ρ = 1 − C(1,1)/C(2,1) = .5, σ = .5; hit (1 − .5)/.500001 = .999998;
    #   miss (1 − .5 − C(0,0)/C(1,0))/.500001 = (.5 − 1)/.500001 = −.999998
    # group 2: all zero → 0
    adv = BGAE(k=1)(batch([1.0, 0.0, 0.0, 0.0], [5, 2, 5, 2], lengths=[1, 3, 2, 3]))
    assert adv[0].tolist() == pytest.approx([0.707106 + 0.999998, 0, 0], abs=1e-5)
    assert adv[2].tolist() == pytest.approx([-0.707106 - 0.999998] * 2 + [0], abs=1e-5)
    assert torch.equal(adv[1], torch.zeros(3)) and torch.equal(adv[3], torch.zeros(3))
    assert adv.dtype == torch.float32


def test_bgae_bad_input():
    with pytest.raises(ValueError, match="group 0 has 3 samples but k=4"):
        BGAE()(batch([1.0, 0.0, 0.0], [0, 0, 0]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        BGAE(k=1)(batch([float("nan"), 0.0], [0, 0]))
    with pytest.raises(ValueError, match="positive int"):
        BGAE(k=0)
    assert BGAE.requires == frozenset()
