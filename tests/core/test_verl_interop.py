"""rewardkit rewards as verl's compute_score (rewardkit.interop), and the module's own
documented examples (TRL, verl, OpenRLHF), run as doctests."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import rewardkit.interop
from rewardkit.external import cached_scorer, parse_reward_set
from rewardkit.interop import compute_score, compute_score_batch
from rewardkit.registry import REWARDS
from rewardkit.rewards import RewardError


class VerlRecorder:
    """Scores len(completion); keeps every batch's samples."""

    batches: list = []

    def __call__(self, samples):
        VerlRecorder.batches.append(samples)
        return [float(len(s.completion)) for s in samples]


REWARDS.register("test.verl_recorder", VerlRecorder)
REWARDS.register("test.verl_nan", lambda samples: [math.nan] * len(samples))


def test_interop_doc_examples_run():
    result = doctest.testmod(rewardkit.interop, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 12  # TRL, verl and OpenRLHF examples
    assert result.failed == 0


def test_data_source_names_a_task_a_reward_or_is_routed_by_rewards():
    assert compute_score("core.arith", "12", "12") == pytest.approx(1.1)  # task weights 1, 0.1
    assert compute_score("core.exact_answer", "12 cats", "12") == 1.0  # a reward name
    assert compute_score("gsm8k", "x 12", "12", rewards="core.exact_answer:2") == 2.0
    routes = {"gsm8k": "core.exact_answer", "fmt": "core.number_format:3"}
    assert compute_score("fmt", " 7 ", None, rewards=routes) == 3.0
    weights = {"core.exact_answer": 1, "core.number_format": 0.5}  # one set for every source
    assert compute_score("anything", "12", "12", rewards=weights) == 1.5
    with pytest.raises(ValueError, match="no rewardkit reward for data_source 'gsm8k'"):
        compute_score("gsm8k", "12", "12")
    with pytest.raises(ValueError, match="no rewardkit reward for data_source 'other'"):
        compute_score("other", "12", "12", rewards=routes)


def test_return_dict_has_score_and_each_reward():
    out = compute_score("core.arith", "12!", "12", return_dict=True)
    assert out == {"score": pytest.approx(1.0), "core.exact_answer": 1.0, "core.number_format": 0.0}


def test_ground_truth_and_extra_info_become_meta_with_numpy_values():
    VerlRecorder.batches.clear()
    scores = compute_score_batch(
        data_sources=np.array(["test.verl_recorder"] * 3 + ["core.arith"], dtype=object),
        solution_strs=["a", "bb", "ccc", "4"],
        ground_truths=[np.int64(4), np.int64(4), {"tests": np.array([1, 2])}, "4"],
        extra_infos=[{"index": 0, "prompt": "p"}, {"index": 0, "prompt": "p"}, None, {}],
    )
    assert scores == [1.0, 2.0, 3.0, pytest.approx(1.1)]
    (batch,) = VerlRecorder.batches  # one batch for the data source's three responses
    assert [s.meta for s in batch] == [
        {"index": 0, "prompt": "p", "answer": 4},
        {"index": 0, "prompt": "p", "answer": 4},
        {"tests": [1, 2]},
    ]
    assert type(batch[0].meta["answer"]) is int and [s.prompt for s in batch] == ["p", "p", ""]
    assert [s.group for s in batch] == [0, 0, 1]  # equal ground truths run together


def test_bad_calls_are_errors():
    with pytest.raises(ValueError, match="2 data_sources, 1 solution_strs"):
        compute_score_batch(["core.arith"] * 2, ["1"], ["1", "1"])
    with pytest.raises(TypeError, match="extra_info must be a dict"):
        compute_score("core.arith", "1", "1", extra_info="not a dict")
    with pytest.raises(RewardError, match="returned nan"):
        compute_score("test.verl_nan", "1", "1")
    with pytest.raises(RewardError, match="needs the dataset row to have an 'answer'"):
        compute_score("core.exact_answer", "1", None)  # no ground truth for a reward needing it
    with pytest.raises(TypeError):
        compute_score("core.arith", "1", "1", no_such_option=1)


def test_reward_sets_are_built_once_per_process():
    specs = parse_reward_set("test.verl_recorder")
    assert cached_scorer(specs) is cached_scorer(parse_reward_set("test.verl_recorder"))
    assert cached_scorer(specs) is not cached_scorer(parse_reward_set("test.verl_recorder:2"))
