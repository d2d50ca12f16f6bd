"""MovieLens-100K loading, the leave-one-out split, prompts and the curriculum mixer."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.types import Sample
from rewardkit_recsys.movielens import (
    Example,
    Item,
    leave_one_out,
    load_interactions,
    load_items,
    load_ml100k,
    user_sequences,
)
from rewardkit_recsys.prompts import (
    curriculum_mix,
    id2title_pair,
    item2id_pair,
    reasoning_pair,
    seqrec_pair,
    templated_rationale,
)
from rewardkit_recsys.rewards import IdMatchReward
from rewardkit_recsys.semantic_ids import codes_to_ids


def test_shipped_files_are_the_full_dataset():
    items = load_items()
    inter = load_interactions()
    assert len(items) == 1682 and len(inter) == 100_000
    assert len({u for u, _, _ in inter}) == 943
    assert items["1"] == Item("1", "Toy Story", "1995", ("Animation", "Children's", "Comedy"))
    assert inter[0] == ("196", "242", 881250949.0)  # first line of ml-100k.inter


def test_split_sizes_on_movielens():
    _, split = load_ml100k()
    # every user: one test and one validation target; the rest (n_u − 3 per user,
    # first item has no history) train: 100000 − 943·3 = 97171
    assert len(split.test) == len(split.valid) == 943
    assert len(split.train) == 100_000 - 3 * 943
    assert max(len(ex.history) for ex in split.test) == 20


def test_leave_one_out_is_chronological_with_capped_history():
    inter = [
        ("u", "c", 30.0),
        ("u", "a", 10.0),
        ("v", "x", 1.0),
        ("u", "b", 20.0),
        ("u", "d", 30.0),
        ("v", "y", 2.0),
        ("v", "z", 3.0),
        ("u", "e", 50.0),
    ]
    seqs = user_sequences(inter)
    assert seqs == {"u": ["a", "b", "c", "d", "e"], "v": ["x", "y", "z"]}  # tie c/d: file order
    split = leave_one_out(seqs, max_history=2)
    assert Example("u", ("c", "d"), "e") in split.test
    assert Example("u", ("b", "c"), "d") in split.valid
    assert [ex for ex in split.train if ex.user == "u"] == [
        Example("u", ("a",), "b"),
        Example("u", ("a", "b"), "c"),
    ]
    assert split.test[1] == Example("v", ("x", "y"), "z") and split.valid[1].target == "y"
    assert [ex for ex in split.train if ex.user == "v"] == []  # 3 items: nothing left to train
    # seen items: the whole earlier sequence, not just the capped history
    assert split.seen_before("u", "test") == {"a", "b", "c", "d"}
    assert split.seen_before("u", "valid") == {"a", "b", "c"}
    with pytest.raises(ValueError, match="split must be 'valid' or 'test'"):
        split.seen_before("u", "train")


def test_bad_data_is_named(tmp_path):
    with pytest.raises(ValueError, match="has 2 interactions"):
        leave_one_out({"u": ["a", "b"]})
    with pytest.raises(ValueError, match="max_history"):
        leave_one_out({"u": ["a", "b", "c"]}, max_history=0)
    bad = tmp_path / "bad.item"
    bad.write_text("item_id:token\tmovie_title:token_seq\n1\tX\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['release_year', 'class'\]"):
        load_items(bad)
    bad.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\n")
    with pytest.raises(ValueError, match=r"bad.item:2: 2 fields"):
        load_interactions(bad)
    bad.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n")
    with pytest.raises(ValueError, match="'soon' is not a number"):
        load_interactions(bad)


ITEMS = {
    "1": Item("1", "Toy Story", "1995", ("Animation", "Comedy")),
    "2": Item("2", "Heat", "1995", ("Action", "Crime")),
    "3": Item("3", "Up", "2009", ("Animation", "Adventure")),
}
IDS = codes_to_ids(np.array([[0, 0], [0, 1], [1, 0]]), ["1", "2", "3"], 2)


def test_prompts_for_each_task():
    ex = Example("u", ("1", "2"), "3")
    seq = seqrec_pair(IDS, ex)
    assert seq["prompt"] == "<|a_1|><|b_1|><|a_1|><|b_2|>>"  # IDs back to back, then ">"
    assert seq["completion"] == "<|a_2|><|b_1|>" and seq["mode"] == "direct"
    assert seq["label_prompt"]  # alignment also learns the history's items
    assert item2id_pair(IDS, ITEMS["2"])["prompt"] == "Movie: Heat (1995)\nID:"
    assert item2id_pair(IDS, ITEMS["2"])["completion"] == "<|a_1|><|b_2|>"
    assert id2title_pair(IDS, ITEMS["3"]) == {
        "task": "id2title",
        "mode": "direct",
        "prompt": "Movie <|a_2|><|b_1|> is titled:",
        "completion": "Up",
    }
    reason = reasoning_pair(IDS, ITEMS, ex)
    assert reason["prompt"] == "<|a_1|><|b_1|><|a_1|><|b_2|>?"
    # genres of the history: Animation 1, Comedy 1, Action 1, Crime 1 (ties: first seen);
    # both from 1995; the last item (Heat) is Action, Crime; the target (Up) Animation, Adventure
    assert reason["completion"] == (
        "<think>likes Animation,Comedy of the 1990s; last Action,Crime; next Animation,"
        "Adventure</think><answer><|a_2|><|b_1|></answer>"
    )
    assert "label_prompt" not in reason
    # the templated completion is exactly what the SRPO reward accepts as a perfect answer
    sample = Sample(
        prompt=reason["prompt"],
        completion=reason["completion"],
        meta={
            "target_id": "<|a_2|><|b_1|>",
            "mode": "reasoning",
            "item_ids": set(IDS.id_to_item),
        },
    )
    assert IdMatchReward()([sample])[0].score == 1.0
    teacher = reasoning_pair(IDS, ITEMS, ex, rationale=lambda e: f"teacher on {e.user}")
    assert teacher["completion"].startswith("<think>teacher on u</think>")
    with pytest.raises(ValueError, match="non-empty history"):
        seqrec_pair(IDS, Example("u", (), "1"))
    assert "2009" not in templated_rationale(ITEMS, ("1",), "3")  # from history, not target


def test_curriculum_probability_grows_through_the_epoch():
    alignment = [f"a{i}" for i in range(2000)]
    reasoning = [f"r{i}" for i in range(50)]
    mixed = curriculum_mix(alignment, reasoning, p_start=0.0, p_end=0.8, seed=1)
    assert [x for x in mixed if x.startswith("a")] != alignment  # shuffled
    assert sorted(x for x in mixed if x.startswith("a")) == sorted(alignment)  # each once
    # p(t) = .8 t / 1999: expected reasoning count in the first quarter ≈ 2000/4 · .1 = 50,
    # in the last quarter ≈ 500 · .7 = 350
    positions = []
    seen = 0
    for x in mixed:
        if x.startswith("a"):
            seen += 1
        else:
            positions.append(seen)
    first = sum(p <= 500 for p in positions)
    last = sum(p > 1500 for p in positions)
    assert 25 < first < 80 and 300 < last < 400
    assert curriculum_mix(alignment, reasoning, 0.0, 0.8, seed=1) == mixed  # seeded
    assert len(curriculum_mix(alignment[:10], reasoning, 1.0, 1.0)) == 20
    assert curriculum_mix(alignment[:10], [], 0.0, 0.0, seed=3) == curriculum_mix(
        alignment[:10], [], 0.0, 0.0, seed=3
    )
    with pytest.raises(ValueError, match="p_end must be in"):
        curriculum_mix(alignment, reasoning, 0.0, 1.5)
    with pytest.raises(ValueError, match="no reasoning samples"):
        curriculum_mix(alignment, [], 0.0, 0.5)
    with pytest.raises(ValueError, match="no alignment samples"):
        curriculum_mix([], reasoning)
