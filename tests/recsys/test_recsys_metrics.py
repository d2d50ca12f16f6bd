"""Recall@K and NDCG@K on hand-made rankings."""

from __future__ import annotations

import math

import pytest

from rewardkit_recsys.metrics import recall_ndcg, target_rank


def test_hand_made_rankings():
    rankings = [
        ["a", "b", "c"],  # target a at rank 1
        ["x", "y", "z", "t", "b"],  # target b at rank 5
        ["p", "q"],  # target m absent (full ranking cut short): a miss at every K
        [str(i) for i in range(12)],  # target "9" at rank 10
    ]
    targets = ["a", "b", "m", "9"]
    got = recall_ndcg(rankings, targets)
    # recall@1 = 1/4; recall@5 = 2/4; recall@10 = 3/4
    # ndcg@1 = 1/4; ndcg@5 = (1 + 1/log2(6))/4 = (1 + .386853)/4 = .346713
    # ndcg@10 = (1 + 1/log2(6) + 1/log2(11))/4 = (1 + .386853 + .289065)/4 = .418979
    assert got["recall@1"] == 0.25 and got["recall@5"] == 0.5 and got["recall@10"] == 0.75
    assert got["ndcg@1"] == 0.25
    assert got["ndcg@5"] == pytest.approx(0.346713, abs=1e-6)
    assert got["ndcg@10"] == pytest.approx(0.418979, abs=1e-6)
    assert set(got) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (1, 5, 10)}


def test_rank_two_gives_one_over_log2_three():
    got = recall_ndcg([["b", "a"]], ["a"], ks=(1, 2))
    assert got == {
        "recall@1": 0.0,
        "ndcg@1": 0.0,
        "recall@2": 1.0,
        "ndcg@2": pytest.approx(1 / math.log2(3)),
    }


def test_bad_input():
    assert target_rank(["a", "b"], "b") == 2 and target_rank([], "b") is None
    with pytest.raises(ValueError, match="more than once"):
        recall_ndcg([["a", "a"]], ["a"])
    with pytest.raises(ValueError, match="2 rankings but 1 targets"):
        recall_ndcg([["a"], ["b"]], ["a"])
    with pytest.raises(ValueError, match="positive ints"):
        recall_ndcg([["a"]], ["a"], ks=(0,))
    with pytest.raises(ValueError, match="no users"):
        recall_ndcg([], [])


def test_ndcg_per_user_matches_the_mean():
    from rewardkit_recsys.metrics import ndcg_per_user

    rankings, targets = [["a", "b", "c"], ["c", "a"], ["x"]], ["b", "c", "y"]
    # ranks 2, 1, none: 1/log2(3) = 0.630930, 1, 0
    assert ndcg_per_user(rankings, targets) == pytest.approx([0.630930, 1.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="2 rankings but 3 targets"):
        ndcg_per_user(rankings[:2], targets)
