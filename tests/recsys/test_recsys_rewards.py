"""SRPO's reward `recsys.id_match` and advantage `recsys.bgae` on hand-computed numbers; the
reward also on malformed outputs (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.registry import ADVANTAGES, REWARDS, TASKS
from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.types import RewardOutput, RolloutBatch, Sample
from rewardkit_recsys.advantage import BGAE, binom, passk_bonus
from rewardkit_recsys.rewards import PREFIX_CREDIT, IdMatchReward, common_prefix, parse_prediction
from rewardkit_recsys.semantic_ids import split_id

TRUE4 = "<|a_1|><|b_2|><|c_3|><|d_4|>"
TRUE5 = "<|a_1|><|b_2|><|c_3|><|d_4|><|e_2|>"
# a catalogue of 4-token IDs around TRUE4: one item for each common-prefix length m
M1, M2, M3 = (
    "<|a_1|><|b_9|><|c_3|><|d_4|>",
    "<|a_1|><|b_2|><|c_9|><|d_4|>",
    "<|a_1|><|b_2|><|c_3|><|d_9|>",
)
M0 = "<|a_2|><|b_2|><|c_3|><|d_4|>"
CAT4 = frozenset({TRUE4, M1, M2, M3, M0})
# a catalogue where two items collide on their 4 codes and get a suffix token
CAT5 = frozenset({"<|a_1|><|b_2|><|c_3|><|d_4|><|e_1|>", TRUE5, M3})


def score(
    completion: str,
    target_id: str = TRUE4,
    row_mode: str = "direct",
    item_ids=CAT4,
    **options,
) -> float:
    meta = {"target_id": target_id, "mode": row_mode, "item_ids": item_ids}
    sample = Sample(prompt="p", completion=completion, meta=meta)
    out = IdMatchReward(**options)([sample])[0]
    assert isinstance(out, RewardOutput)
    return out.score


def test_registered_through_entry_points():
    assert REWARDS.get("recsys.id_match") is IdMatchReward
    assert ADVANTAGES.get("recsys.bgae") is BGAE
    assert TASKS.get("recsys.movielens").__name__ == "MovieLens"


@pytest.mark.parametrize(
    ("completion", "target", "catalogue", "expected"),
    [
        (TRUE4, TRUE4, CAT4, 1.0),  # exact match
        (" " + TRUE4 + "\n", TRUE4, CAT4, 1.0),  # surrounding whitespace is fine
        (M1, TRUE4, CAT4, 0.5),  # a real item, m = 1 → table[0]
        (M2, TRUE4, CAT4, 0.707),  # a real item, m = 2 → table[1]
        (M3, TRUE4, CAT4, 0.866),  # a real item, m = 3 → table[2]
        (M0, TRUE4, CAT4, 0.0),  # a real item, m = 0
        ("<|a_1|><|b_2|>", TRUE4, CAT4, 0.0),  # truncated: 2 of 4 tokens (was 0.707)
        ("<|a_1|><|b_2|><|c_3|>", TRUE4, CAT4, 0.0),  # truncated: 3 of 4 tokens
        ("<|a_1|>", TRUE4, CAT4, 0.0),  # truncated: 1 token
        ("<|a_1|><|b_2|><|c_9|><|d_5|>", TRUE4, CAT4, 0.0),  # m = 2, but no such item
        (TRUE4 + "<|e_1|>", TRUE4, CAT4, 0.0),  # a suffix too many: no such item
        ("<|a_1|><|b_2|><|c_3|><|d_4|><|e_1|>", TRUE5, CAT5, 0.95),  # wrong suffix, m = 4
        (TRUE5, TRUE5, CAT5, 1.0),
        (TRUE4, TRUE5, CAT5, 0.0),  # collision suffix missing: a prefix, not an item
        (M3, TRUE5, CAT5, 0.866),  # m = 3
        ("", TRUE4, CAT4, 0.0),  # no ID
        ("<|a_1|> <|b_2|><|c_3|><|d_4|>", TRUE4, CAT4, 0.0),  # stray space: format invalid
        ("ID: " + TRUE4, TRUE4, CAT4, 0.0),  # extra text: format invalid
        ("<|b_2|><|a_1|><|c_3|><|d_4|>", TRUE4, CAT4, 0.0),  # levels out of order
        ("<think>x</think><answer>" + TRUE4 + "</answer>", TRUE4, CAT4, 0.0),  # wrong mode
    ],
)
def test_id_match_direct(completion, target, catalogue, expected):
    assert score(completion, target, item_ids=catalogue) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>likes drama</think><answer>" + TRUE4 + "</answer>", 1.0),
        ("<think>a\nb</think>\n<answer>" + M2 + "</answer>", 0.707),  # a real item, m = 2
        ("<think>a\nb</think>\n<answer><|a_1|><|b_2|></answer>", 0.0),  # truncated ID
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


def test_id_match_counts_invalid_samples_and_groups_with_a_hit():
    reward = IdMatchReward()
    meta = {"target_id": TRUE4, "mode": "direct", "item_ids": CAT4}
    completions = [  # group 0: a hit and a truncated ID; group 1: a near miss and junk
        (0, TRUE4),
        (0, "<|a_1|><|b_2|>"),
        (1, M3),
        (1, "junk"),
    ]
    samples = [Sample(prompt="p", completion=c, group=g, meta=meta) for g, c in completions]
    outs = reward(samples, RewardContext(0, "train"))
    assert [o.score for o in outs] == pytest.approx([1.0, 0.0, 0.866, 0.0])
    assert [o.info["valid"] for o in outs] == [True, False, True, False]
    reward(samples[:1], RewardContext(0, "eval"))  # evaluation is not counted
    # 2 of 4 samples invalid; 1 of 2 groups holds an exact hit
    assert reward.stats() == {"invalid_fraction": 0.5, "groups_with_hit": 0.5}
    assert reward.stats() == {}  # reset after reading


def test_id_match_bad_input():
    with pytest.raises(KeyError, match="target_id"):
        IdMatchReward()([Sample(prompt="p", completion=TRUE4, meta={"item_ids": CAT4})])
    with pytest.raises(KeyError, match="item_ids"):
        IdMatchReward()([Sample(prompt="p", completion=TRUE4, meta={"target_id": TRUE4})])
    with pytest.raises(ValueError, match="mode"):
        IdMatchReward(mode="loose")
    with pytest.raises(ValueError, match="row mode"):
        score(TRUE4, row_mode="chat")
    with pytest.raises(ValueError, match="credit"):
        IdMatchReward(credit=[0.5, 2.0])
    assert parse_prediction(TRUE4, "direct") == ["<|a_1|>", "<|b_2|>", "<|c_3|>", "<|d_4|>"]


# -- malformed outputs (hypothesis) ---------------------------------------------------------
ID_TOKENS = [f"<|{letter}_{code}|>" for letter in "abcde" for code in (1, 2, 3, 4, 9)]
PIECES = st.sampled_from(
    [*ID_TOKENS, " ", "\n", "<|", "|>", "a_1", "<think>", "</think>", "<answer>", "</answer>", "x"]
)


def ladder(predicted: str, truth: str) -> float:
    """The expected score of a catalogue item, from the spec's table."""
    if predicted == truth:
        return 1.0
    m = common_prefix(split_id(predicted), split_id(truth))
    return 0.0 if m == 0 else PREFIX_CREDIT[min(m, 4) - 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=8).map("".join), st.sampled_from(sorted(CAT4)))
def test_only_complete_items_earn_credit(completion, target):
    got = score(completion, target)
    item = completion.strip()
    if item in CAT4:
        assert got == pytest.approx(ladder(item, target))
    else:  # anything else, however close to an ID, earns nothing
        assert got == 0.0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CAT4 | CAT5)), st.data())
def test_every_truncation_of_an_item_scores_zero(item, data):
    tokens = split_id(item)
    cut = data.draw(st.integers(1, len(tokens) - 1))
    truncated = "".join(tokens[:cut])
    for catalogue, target in ((CAT4, TRUE4), (CAT5, TRUE5)):
        if truncated not in catalogue:
            assert score(truncated, target, item_ids=catalogue) == 0.0
            wrapped = f"<think>r</think><answer>{truncated}</answer>"
            assert score(wrapped, target, row_mode="reasoning", item_ids=catalogue) == 0.0


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
