"""BFCL conversion, task tools.bfcl and the evaluator, over every converted sample."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from rewardkit.registry import REWARDS, TASKS
from rewardkit.types import Sample
from rewardkit_tools.bfcl import (
    CATEGORIES,
    OMIT,
    BFCLTask,
    convert_row,
    first_value,
    ground_truth_calls,
    load_bfcl,
)
from rewardkit_tools.bfcl_scoring import evaluate, judge, standardize, value_accepted
from rewardkit_tools.toolrl import ToolRLReward
from rewardkit_tools.toolrl_parse import answer_text


@pytest.fixture(scope="module")
def rows():
    return load_bfcl()


def as_completion(calls) -> str:
    return answer_text(calls, think="reasoning")


def ground_truth_completion(row) -> str:
    """The BFCL ground truth fed back as a prediction (relevance: a call to an offered
    function, since any call is right there)."""
    if row["relevance"]:
        return as_completion([{"name": row["function_names"][0], "parameters": {}}])
    if row["gt_calls"]:
        return as_completion(row["gt_calls"])
    return "<think>reasoning</think>\n" + row["ground_truth"]


def test_every_category_is_converted(rows):
    counts = Counter(r["category"] for r in rows)
    assert set(counts) == set(CATEGORIES)
    # file sizes of bfcl-eval 2026.3.23
    assert counts["simple_python"] == 400 and counts["parallel_multiple"] == 200
    assert counts["live_relevance"] == 16 and counts["live_irrelevance"] == 884
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["prompt"][0]["role"] == "system" and r["prompt"][-1]["role"] in (
            "user",
            "assistant",
        )


def test_ground_truth_scores_the_maximum_on_every_sample(rows):
    reward = ToolRLReward()
    samples = [Sample(prompt="p", completion=ground_truth_completion(r), meta=r) for r in rows]
    outs = reward(samples)
    for row, out in zip(rows, outs, strict=True):
        assert out.info["format"] == 1.0, row["id"]
        # a call is expected: +3; irrelevance: the spec's "no ground-truth call -> 0"
        expected = 0.0 if (row["gt_calls"] == [] and not row["relevance"]) else 3.0
        assert out.info["correctness"] == expected, (row["id"], out.info)


def test_ground_truth_is_exact_and_accepted_everywhere(rows):
    preds = {r["id"]: ground_truth_completion(r) for r in rows}
    report = evaluate(rows, preds)
    for category in [*CATEGORIES, "overall"]:
        assert report[category]["exact_match"] == 1.0, category
        assert report[category]["accuracy"] == 1.0, category
    assert report["overall"]["n"] == len(rows)


def perturb_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "zz"
    return "perturbed"


def test_perturbed_argument_or_name_lowers_the_reward(rows):
    reward = ToolRLReward()
    call_rows = [r for r in rows if r["gt_calls"]]
    wrong_value, wrong_name = [], []
    for row in call_rows:
        calls = copy.deepcopy(row["gt_calls"])
        calls[0]["name"] += "_x"
        wrong_name.append(Sample(prompt="p", completion=as_completion(calls), meta=row))
        calls = copy.deepcopy(row["gt_calls"])
        params = next((c["parameters"] for c in calls if c["parameters"]), None)
        if params is not None:
            key = next(iter(params))
            params[key] = perturb_value(params[key])
            wrong_value.append(Sample(prompt="p", completion=as_completion(calls), meta=row))
    assert len(wrong_value) > 0.95 * len(call_rows)
    for s, out in zip(wrong_value + wrong_name, reward(wrong_value + wrong_name), strict=True):
        assert out.info["correctness"] < 3.0, s.meta["id"]
        assert not judge(s.meta, s.completion)[0], s.meta["id"]


def test_first_value_rules():
    assert first_value([10], "p") == 10
    assert first_value(["", 0], "p") is OMIT  # "" first: optional, left out
    assert first_value([], "p") is OMIT
    assert first_value([[3, 5]], "p") == [3, 5]
    nested = [{"size": ["large", "big"], "note": ["", "x"]}]
    assert first_value(nested, "p") == {"size": "large"}
    assert first_value([[{"item": ["a"], "n": [5]}]], "p") == [{"item": "a", "n": 5}]
    with pytest.raises(ValueError, match="p"):
        first_value(10, "p")
    possible = [{"f": {"a": [1], "b": ["", 2]}}, {"g": {}}]
    assert ground_truth_calls(possible, "row") == [
        {"name": "f", "parameters": {"a": 1}},
        {"name": "g", "parameters": {}},
    ]
    with pytest.raises(ValueError, match="one-key"):
        ground_truth_calls([{"f": {}, "g": {}}], "row")


def test_bfcl_style_acceptance():
    assert standardize("April 1, 2024") == standardize("april 1,2024")
    assert value_accepted("New York, NY", "new york ny")
    assert value_accepted(5, 5.0)  # an int where a float is accepted
    assert not value_accepted(True, 1) and not value_accepted(1, True)
    assert not value_accepted("5", 5)
    row = {
        "id": "r",
        "category": "parallel",
        "relevance": False,
        "gt_calls": [{"name": "f", "parameters": {"x": 1}}, {"name": "g", "parameters": {}}],
        "possible_answer": [{"f": {"x": [1, 2], "unit": ["", "cm"]}}, {"g": {}}],
    }
    other_value_any_order = [
        {"name": "g", "parameters": {}},
        {"name": "f", "parameters": {"x": 2, "unit": "cm"}},
    ]
    assert judge(row, other_value_any_order) == (False, True)
    assert judge(row, row["gt_calls"]) == (True, True)
    assert judge(row, [{"name": "f", "parameters": {"x": 3}}, {"name": "g", "parameters": {}}]) == (
        False,
        False,
    )  # value not accepted
    assert judge(
        row, [{"name": "f", "parameters": {"x": 1, "y": 0}}, {"name": "g", "parameters": {}}]
    ) == (False, False)  # unknown param
    assert judge(row, [{"name": "f", "parameters": {}}, {"name": "g", "parameters": {}}]) == (
        False,
        False,
    )  # needed param missing
    assert judge(row, "<think>t</think>\n<tool_call>\nbroken\n</tool_call>") == (False, False)
    irrelevant = {"id": "i", "category": "irrelevance", "relevance": False, "gt_calls": []}
    assert judge(irrelevant, "<think>t</think>\n<response>no</response>") == (True, True)
    assert judge(irrelevant, as_completion([{"name": "f", "parameters": {}}])) == (False, False)


def test_evaluator_reports_per_category_and_rejects_missing():
    rows = [
        {
            "id": "a",
            "category": "simple_python",
            "relevance": False,
            "gt_calls": [{"name": "f", "parameters": {"x": 1}}],
            "possible_answer": [{"f": {"x": [1, 2]}}],
        },
        {
            "id": "b",
            "category": "simple_python",
            "relevance": False,
            "gt_calls": [{"name": "f", "parameters": {"x": 1}}],
            "possible_answer": [{"f": {"x": [1, 2]}}],
        },
        {"id": "c", "category": "irrelevance", "relevance": False, "gt_calls": []},
    ]
    preds = {
        "a": [{"name": "f", "parameters": {"x": 1}}],  # exact
        "b": [{"name": "f", "parameters": {"x": 2}}],  # accepted, not exact
        "c": [{"name": "f", "parameters": {"x": 2}}],
    }  # wrong: calls on irrelevance
    report = evaluate(rows, preds)
    assert report["simple_python"] == {"n": 2.0, "exact_match": 0.5, "accuracy": 1.0}
    assert report["irrelevance"] == {"n": 1.0, "exact_match": 0.0, "accuracy": 0.0}
    assert report["overall"]["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(KeyError, match="no prediction"):
        evaluate(rows, {"a": []})


def test_convert_row_errors():
    row = {
        "id": "x",
        "question": [[{"role": "user", "content": "q"}]],
        "function": [{"name": "f", "parameters": {}}],
    }
    with pytest.raises(ValueError, match="no possible answer"):
        convert_row(row, "simple_python", None)
    with pytest.raises(ValueError, match="unknown BFCL category"):
        convert_row(row, "multi_turn_base", None)
    with pytest.raises(ValueError, match="one question turn"):
        convert_row({**row, "question": []}, "irrelevance", None)


def test_task_is_registered_and_splits():
    assert TASKS.get("tools.bfcl") is BFCLTask
    assert REWARDS.get("tools.toolrl") is ToolRLReward
    task = BFCLTask(categories=["simple_python", "irrelevance"], test_fraction=0.25)
    train, test = task.rows("train"), task.rows("test")
    assert len(train) + len(test) == 640 and 0.15 < len(test) / 640 < 0.35
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert BFCLTask(categories=["simple_python"], test_fraction=0.25).rows("test") == [
        r for r in test if r["category"] == "simple_python"
    ]  # stable split
    small = BFCLTask(
        categories=["simple_python", "irrelevance"], max_rows=20, prompt_style="compact"
    )
    assert len(small.rows("train")) == 20
    assert small.prompt(small.rows("train")[0])[0]["content"].startswith("Tools:")
    with pytest.raises(ValueError, match="splits"):
        task.rows("validation")
    with pytest.raises(ValueError, match="unknown BFCL categories"):
        BFCLTask(categories=["nope"])
