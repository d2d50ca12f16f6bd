"""The "demo" prompt style of tools.bfcl and the binary reward tools.bfcl_binary."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.registry import REWARDS
from rewardkit.types import Sample
from rewardkit_tools.bfcl import (
    CALL_CATEGORIES,
    DEMO_ANSWER,
    BFCLTask,
    load_bfcl,
    signature,
)
from rewardkit_tools.bfcl_scoring import BFCLBinaryReward
from rewardkit_tools.toolrl import ToolRLReward, format_score
from rewardkit_tools.toolrl_parse import answer_text, parse_tool_calls


@pytest.fixture(scope="module")
def rows():
    return load_bfcl(["simple_python", "multiple", "irrelevance", "live_relevance"], "demo")


def sample(row, completion):
    return Sample(prompt="p", completion=completion, meta=row)


# -- the demo prompt --------------------------------------------------------------------------
def test_signature_lists_types_optional_and_enums():
    f = {
        "name": "convert",
        "description": "Convert an amount. Uses daily rates.",
        "parameters": {
            "type": "dict",
            "properties": {
                "amount": {"type": "float"},
                "unit": {"type": "string", "enum": ["USD", "EUR"]},
                "date": {"type": "string"},
            },
            "required": ["amount", "unit"],
        },
    }
    assert signature(f) == (
        'convert(amount: float, unit: string one of ["USD", "EUR"], date: string (optional))'
        " - Convert an amount"
    )
    assert signature({"name": "ping"}) == "ping()"


def test_demo_prompt_layout(rows):
    for row in rows:
        system, demo_user, demo_answer, *rest = row["prompt"]
        assert [system["role"], demo_user["role"], demo_answer["role"]] == [
            "system",
            "user",
            "assistant",
        ]
        assert rest and rest[0]["role"] == "user", row["id"]
        question = rest[0]["content"]
        assert question.startswith("Functions:\n") and "\n\nQuestion: " in question
        for name in row["function_names"]:
            assert f"\n{name}(" in question, (row["id"], name)


def test_demo_answer_is_a_toolrl_answer_on_a_tool_no_ground_truth_uses():
    calls = parse_tool_calls(DEMO_ANSWER)
    assert format_score(DEMO_ANSWER, answer_text(calls)) == 1.0
    call_rows = load_bfcl(CALL_CATEGORIES, "compact")
    used = {c["name"] for r in call_rows for c in r["gt_calls"] or []}
    assert calls[0]["name"] not in used


def test_demo_task_split_is_disjoint_and_large_enough():
    task = BFCLTask(
        categories=["simple_python", "multiple"], prompt_style="demo", test_fraction=0.35
    )
    train, test = task.rows("train"), task.rows("test")
    assert len(train) + len(test) == 600 and len(test) >= 200
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    with pytest.raises(ValueError, match="prompt_style"):
        BFCLTask(categories=["simple_python"], prompt_style="chatty")


# -- the binary reward ------------------------------------------------------------------------
def test_registered():
    assert REWARDS.get("tools.bfcl_binary") is BFCLBinaryReward
    with pytest.raises(ValueError, match="criterion"):
        BFCLBinaryReward("close enough")


def test_ground_truth_scores_one_in_both_criteria(rows):
    for criterion in ("exact", "accepted"):
        reward = BFCLBinaryReward(criterion)
        for row in rows:
            if row["relevance"]:
                calls = [{"name": row["function_names"][0], "parameters": {}}]
                completion = answer_text(calls, think="t")
            elif row["gt_calls"]:
                completion = answer_text(row["gt_calls"], think="t")
            else:
                completion = "<think>t</think>\n" + row["ground_truth"]
            assert reward([sample(row, completion)])[0].score == 1.0, (criterion, row["id"])


def test_layout_is_not_scored_but_calls_are(rows):
    reward = BFCLBinaryReward()
    row = next(
        r for r in rows if r["category"] == "simple_python" and r["gt_calls"][0]["parameters"]
    )
    block = answer_text(row["gt_calls"])  # no <think>
    assert reward([sample(row, block)])[0].score == 1.0
    assert reward([sample(row, "Sure!\n" + block + "\nDone.")])[0].score == 1.0
    assert ToolRLReward()([sample(row, block)])[0].info["format"] == 0.0  # ToolRL does score it

    wrong = copy.deepcopy(row["gt_calls"])
    key = next(iter(wrong[0]["parameters"]))
    wrong[0]["parameters"][key] = "zz-not-it"
    renamed = copy.deepcopy(row["gt_calls"])
    renamed[0]["name"] += "_x"
    broken = block.replace("}}", "}")
    cases = [answer_text(wrong), answer_text(renamed), broken, "", "<tool_call>", "no call"]
    outs = reward([sample(row, c) for c in cases])
    assert [o.score for o in outs] == [0.0] * len(cases)
    assert outs[2].info["malformed"] == 1.0 and outs[0].info["malformed"] == 0.0
    twice = answer_text(row["gt_calls"] + row["gt_calls"])
    assert reward([sample(row, twice)])[0].score == 0.0


def test_exact_is_stricter_than_accepted(rows):
    """A value BFCL accepts after its string normalisation, or a later accepted value, is
    not the ground truth's first value: 1 under "accepted", 0 under "exact"."""
    row = next(
        r
        for r in rows
        if r["category"] == "simple_python"
        and any(isinstance(v, str) and v for v in r["gt_calls"][0]["parameters"].values())
    )
    calls = copy.deepcopy(row["gt_calls"])
    key = next(k for k, v in calls[0]["parameters"].items() if isinstance(v, str) and v)
    calls[0]["parameters"][key] = calls[0]["parameters"][key].upper() + " "
    completion = answer_text(calls)
    exact, accepted = BFCLBinaryReward("exact"), BFCLBinaryReward("accepted")
    assert exact([sample(row, completion)])[0].score == 0.0
    assert accepted([sample(row, completion)])[0].score == 1.0
    assert exact([sample(row, completion)])[0].info["accepted"] == 1.0


def test_irrelevance_rewards_no_call(rows):
    row = next(r for r in rows if r["category"] == "irrelevance")
    reward = BFCLBinaryReward()
    call = answer_text([{"name": row["function_names"][0], "parameters": {}}])
    assert reward([sample(row, "<response>I cannot.</response>")])[0].score == 1.0
    assert reward([sample(row, call)])[0].score == 0.0


def test_a_sample_without_a_bfcl_row_is_an_error():
    with pytest.raises(KeyError, match="converted BFCL row"):
        BFCLBinaryReward()([Sample(prompt="p", completion="x", meta={"answer": "1"})])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["<tool_call>", "</tool_call>", "\n", "<think>", "</think>"]),
            st.builds(
                lambda n, p: json.dumps({"name": n, "parameters": p}),
                st.sampled_from(["calculate_triangle_area", "x"]),
                st.dictionaries(
                    st.sampled_from(["base", "height", "unit"]),
                    st.one_of(st.integers(), st.text(max_size=4), st.none(), st.floats()),
                ),
            ),
        ),
        max_size=8,
    )
)
def test_any_completion_scores_zero_or_one(pieces):
    row = load_bfcl_cached()
    out = BFCLBinaryReward("accepted")([sample(row, "".join(pieces))])[0]
    assert out.score in (0.0, 1.0)


_ROW: dict = {}


def load_bfcl_cached():
    if not _ROW:
        _ROW.update(load_bfcl(["simple_python"], "demo")[0])
    return _ROW
