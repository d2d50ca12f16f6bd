"""ToolRL format and correctness rewards on hand-computed cases (arXiv 2504.13958, §3.3)."""

from __future__ import annotations

import json

import pytest

from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.types import Sample
from rewardkit_tools.toolrl import (
    ScaleSchedule,
    ToolRLFormatReward,
    ToolRLReward,
    correctness_score,
    format_score,
    multiset_jaccard,
    same_value,
)
from rewardkit_tools.toolrl_parse import (
    MalformedToolCall,
    answer_text,
    parse_tool_calls,
    toolrl_system_prompt,
)


def call(name: str, **params) -> dict:
    return {"name": name, "parameters": params}


def calls_text(*calls: dict) -> str:
    return answer_text(list(calls), think="t")


def correct(gt_calls, pred_calls, granularity="fine") -> float:
    gt = answer_text(gt_calls)
    return correctness_score(calls_text(*pred_calls), gt, granularity)[0]


GT_CALL = answer_text([call("a", x=1)])
GT_RESP = "<response>hi</response>"
GT_BOTH = answer_text([call("a", x=1)], response="done")


# -- format -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("completion", "gt", "expected"),
    [
        ("<think>r</think>\n<response>ok</response>", GT_RESP, 1.0),
        (
            '<think>r</think>\n<tool_call>\n{"name": "a", "parameters": {}}\n</tool_call>',
            GT_CALL,
            1.0,
        ),
        ("<think>r</think>\n<tool_call>\nX\n</tool_call>\n<response>ok</response>", GT_BOTH, 1.0),
        ("<think>only thinking</think>", "", 1.0),  # neither: think only
        ("  <think>r</think>\n<response>ok</response>\n", GT_RESP, 1.0),  # outer spaces ignored
        ("<response>ok</response>", GT_RESP, 0.0),  # no think
        ("<think>r</think><response>ok</response>", GT_RESP, 0.0),  # newline missing
        ("<think>r</think>\n<response>ok</response> trailing", GT_RESP, 0.0),
        ("<think>r</think>\n<tool_call>\nX\n</tool_call>", GT_RESP, 0.0),  # wrong structure
        ("<think>r</think>\n<response>ok</response>", GT_BOTH, 0.0),  # call missing
        ("<think>r</think>\n<response>ok</response>\n<tool_call>\nX\n</tool_call>", GT_BOTH, 0.0),
        ("<think>r <think> </think>\n<response>ok</response>", GT_RESP, 0.0),  # duplicated tag
        ("<think>r</think>\n<response>a</response><response>b</response>", GT_RESP, 0.0),
        ("<think>r <tool_call></think>\n<response>ok</response>", GT_RESP, 0.0),  # unused tag
        ("<think>r</think>\n<response>ok</response>", "", 0.0),  # expected think only
    ],
)
def test_format_score(completion, gt, expected):
    assert format_score(completion, gt) == expected


# -- helpers ------------------------------------------------------------------------------
def test_multiset_jaccard_by_hand():
    assert multiset_jaccard([], []) == 1.0
    assert multiset_jaccard(["a", "b"], ["b", "a"]) == 1.0  # inter 2 / (2 + 2 - 2)
    assert multiset_jaccard(["a"], ["a", "a"]) == 0.5  # inter 1 / (1 + 2 - 1)
    assert multiset_jaccard(["x", "y", "z"], ["x", "w"]) == 0.25  # 1 / (3 + 2 - 1)
    assert multiset_jaccard(["a"], []) == 0.0  # 0 / 1


def test_same_value_is_type_sensitive():
    assert same_value(1, 1) and same_value([1, {"a": "b"}], [1, {"a": "b"}])
    assert not same_value(1, 1.0)
    assert not same_value(True, 1)
    assert not same_value("1", 1)
    assert not same_value([1, 2], [1, 2, 3])
    assert not same_value({"a": 1}, {"a": 1, "b": 2})


# -- correctness, fine granularity ---------------------------------------------------------
def test_exact_match_is_plus_three():
    assert correct([call("a", x=1, y="s")], [call("a", x=1, y="s")]) == 3.0


def test_one_wrong_value():
    # r_name = 1; param Jaccard 1 + value 1 (x) = 2; R_max = 3; S_max = 1 + 1 + 2 = 4
    # R = 6 * 3 / 4 - 3 = 1.5
    assert correct([call("a", x=1, y=2)], [call("a", x=1, y=3)]) == pytest.approx(1.5)


def test_values_compared_with_types():
    # x = 1.0 is not 1: value score 1 (y only), best 2, R_max 3 -> 1.5 as above
    assert correct([call("a", x=1, y=2)], [call("a", x=1.0, y=2)]) == pytest.approx(1.5)
    # both floats: value 0, best 1, R_max 2 -> 6 * 2 / 4 - 3 = 0
    assert correct([call("a", x=1, y=2)], [call("a", x=1.0, y=2.0)]) == pytest.approx(0.0)


def test_wrong_name_scores_minimum():
    # names {a} vs {b}: Jaccard 0 / 2 = 0; no candidate with name a; R = 6 * 0 / 3 - 3
    assert correct([call("a", x=1)], [call("b", x=1)]) == pytest.approx(-3.0)


def test_parallel_calls_in_another_order():
    # not exact (order differs); r_name = 2 / (2 + 2 - 2) = 1; each call best 1 + 1 = 2
    # R_max = 5, S_max = 1 + 2 + 2 = 5 -> 6 - 3 = 3
    assert correct([call("a", x=1), call("b", y=2)], [call("b", y=2), call("a", x=1)]) == 3.0


def test_extra_call():
    # r_name = 1 / (1 + 2 - 1) = 0.5; best for a(x=1): P0 (1 + 1 = 2) over P1 (1 + 0)
    # R_max = 2.5, S_max = 1 + 1 + 1 = 3 -> 6 * 2.5 / 3 - 3 = 2
    assert correct([call("a", x=1)], [call("a", x=1), call("a", x=2)]) == pytest.approx(2.0)


def test_ties_keep_the_first_candidate():
    # g1 = a(x=1): P0 a(x=2) and P1 a(x=3) both score 1 -> P0 (strictly greater wins)
    # g2 = a(x=3): P1 scores 1 + 1 = 2. r_name = 1, R_max = 1 + 1 + 2 = 4, S_max = 5
    # R = 6 * 4 / 5 - 3 = 1.8   (had the tie gone to P1: R_max = 3, R = 0.6)
    assert correct([call("a", x=1), call("a", x=3)], [call("a", x=2), call("a", x=3)]) == (
        pytest.approx(1.8)
    )


def test_zero_score_candidate_is_not_used():
    # a(y=5) vs a(x=1): param Jaccard 0, value 0 -> score 0, not > 0, unused
    # R_max = r_name = 1, S_max = 3 -> 6 / 3 - 3 = -1
    assert correct([call("a", x=1)], [call("a", y=5)]) == pytest.approx(-1.0)


def test_empty_parameters_and_missing_call():
    # r_name = 1 / (2 + 1 - 1) = 0.5; a(): Jaccard([], []) = 1 -> best 1; b: none
    # R_max = 1.5, S_max = 1 + 2 + 0 = 3 -> 6 * 1.5 / 3 - 3 = 0
    assert correct([call("a"), call("b")], [call("a")]) == pytest.approx(0.0)


def test_partial_parameter_names():
    # names [x, y, z] vs [x, w]: 1 / 4 = 0.25; value: x -> 1; best 1.25; r_name 1
    # R_max = 2.25, S_max = 1 + 1 + 3 = 5 -> 6 * 2.25 / 5 - 3 = -0.3
    got = correct([call("a", x=1, y=2, z=3)], [call("a", x=1, w=2)])
    assert got == pytest.approx(-0.3)


@pytest.mark.parametrize(
    "completion",
    [
        "<think>t</think>\n<response>no call</response>",  # block missing
        "<think>t</think>\n<tool_call>\n" + json.dumps(call("a", x=1)),  # closing tag missing
        "<think>t</think>\n<tool_call>\n{not json}\n</tool_call>",
        '<think>t</think>\n<tool_call>\n{"name": "a"}\n</tool_call>',  # lacks parameters
        '<think>t</think>\n<tool_call>\n{"parameters": {}}\n</tool_call>',  # lacks name
        '<think>t</think>\n<tool_call>\n{"name": "a", "parameters": [1]}\n</tool_call>',
        '<think>t</think>\n<tool_call>\n{"name": 3, "parameters": {}}\n</tool_call>',
        "<think>t</think>\n<tool_call>\n[1, 2]\n</tool_call>",
    ],
)
def test_malformed_prediction_is_minus_three(completion):
    score, info = correctness_score(completion, GT_CALL)
    assert score == -3.0 and info["case"] == "malformed"


def test_ground_truth_without_call_is_zero():
    assert correctness_score(calls_text(call("a", x=1)), GT_RESP)[0] == 0.0
    assert correctness_score("<think>t</think>\n<response>x</response>", GT_RESP)[0] == 0.0


def test_relevance_accepts_any_offered_call():
    gt = "<tool_call>\n</tool_call>"
    ok = correctness_score(calls_text(call("f", q="x")), gt, any_call_names=["f", "g"])
    bad = correctness_score(calls_text(call("h")), gt, any_call_names=["f", "g"])
    none = correctness_score("<think>t</think>\n<response>x</response>", gt, any_call_names=["f"])
    assert (ok[0], bad[0], none[0]) == (3.0, -3.0, -3.0)


# -- granularity ablations -----------------------------------------------------------------
def test_intermediate_granularity_matches_the_reference_code():
    """The reference's INTERMEDIATEREWARD: 1 per exactly matched call, S_max = 1 + |G|."""
    # issue 17: G = [a(x=1,y=2), b(z=3)], P = [a(x=1,y=0), b(z=3)]: r_name 1, a 0, b 1:
    # R_max 2 / S_max 3 -> 6 * 2/3 - 3 = +1 (the fine S_max 6 with 1 + |params| per call
    # gave 0 here)
    got = correct(
        [call("a", x=1, y=2), call("b", z=3)], [call("a", x=1, y=0), call("b", z=3)], "intermediate"
    )
    assert got == pytest.approx(1.0)
    # one wrong value: no call matches; R_max = r_name = 1, S_max = 2 -> 6/2 - 3 = 0
    assert correct([call("a", x=1, y=2)], [call("a", x=1, y=3)], "intermediate") == (
        pytest.approx(0.0)
    )
    # extra call: P0 matches -> 1; r_name 1/2 -> R_max 1.5 / 2 -> 6 * 0.75 - 3 = 1.5
    got = correct([call("a", x=1)], [call("a", x=1), call("a", x=2)], "intermediate")
    assert got == pytest.approx(1.5)


def test_coarse_granularity():
    assert correct([call("a", x=1)], [call("a", x=1)], "coarse") == 3.0
    assert correct([call("a", x=1, y=2)], [call("a", x=1, y=3)], "coarse") == -3.0
    # another order is not the exact list (fine gives +3 here)
    assert (
        correct([call("a", x=1), call("b", y=2)], [call("b", y=2), call("a", x=1)], "coarse")
        == -3.0
    )


def test_unknown_granularity_is_an_error():
    with pytest.raises(ValueError, match="granularity"):
        correctness_score(calls_text(call("a")), GT_CALL, "medium")
    with pytest.raises(ValueError, match="granularity"):
        ToolRLReward(granularity="medium")


# -- the reward, the schedule and the length option -----------------------------------------
def sample(completion: str, gt: str, **meta) -> Sample:
    return Sample(prompt="p", completion=completion, meta={"ground_truth": gt, **meta})


def test_reward_is_format_plus_correctness():
    gt = answer_text([call("a", x=1, y=2)])
    s_exact = sample(calls_text(call("a", x=1, y=2)), gt)
    s_wrong = sample(calls_text(call("a", x=1, y=3)), gt)
    s_badfmt = sample("<tool_call>\n" + json.dumps(call("a", x=1, y=2)) + "\n</tool_call>", gt)
    out = ToolRLReward()([s_exact, s_wrong, s_badfmt])
    assert [o.score for o in out] == [pytest.approx(4.0), pytest.approx(2.5), pytest.approx(3.0)]
    assert out[1].info["format"] == 1.0 and out[1].info["correctness"] == pytest.approx(1.5)
    assert ToolRLFormatReward()([s_exact, s_badfmt]) == [1.0, 0.0]


def test_missing_ground_truth_is_a_clear_error():
    with pytest.raises(KeyError, match="ground_truth"):
        ToolRLReward()([Sample(prompt="p", completion="x")])


def test_dynamic_scale_schedule_matches_the_reference_code():
    """The reference's SCHEDULEREWARD over 150 steps: format max 2 - step/150 (>= 1), min
    -2 + 2 step/150 (<= -1); correctness max 2 + step/150 (<= 3), min -2 - step/150 (>= -3)."""
    sched = ScaleSchedule("dynamic")
    assert sched.ranges(0) == ((-2.0, 2.0), (-2.0, 2.0))
    fmt, cor = sched.ranges(30)  # format (-1.6, 1.8), correctness (-2.2, 2.2)
    assert fmt == pytest.approx((-1.6, 1.8)) and cor == pytest.approx((-2.2, 2.2))
    fmt, cor = sched.ranges(75)  # the format's low bound stops at -1 here
    assert fmt == pytest.approx((-1.0, 1.5)) and cor == pytest.approx((-2.5, 2.5))
    fmt, cor = sched.ranges(120)
    assert fmt == pytest.approx((-1.0, 1.2)) and cor == pytest.approx((-2.8, 2.8))
    assert sched.ranges(150) == sched.ranges(999) == ((-1.0, 1.0), (-3.0, 3.0))
    # a plain linear schedule: end = toward
    lin = ScaleSchedule(
        "dynamic", steps=10, format_start=(0.0, 2.0), format_end=(0.0, 1.0), format_toward=None
    )
    assert lin.ranges(5) == ((0.0, 1.5), (-2.5, 2.5))
    assert ScaleSchedule().ranges(3) == ((0.0, 1.0), (-3.0, 3.0))
    with pytest.raises(ValueError, match="schedule_steps"):
        ScaleSchedule("dynamic", steps=0)
    with pytest.raises(ValueError, match="pair"):
        ScaleSchedule("dynamic", correct_end=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="format_start"):
        ScaleSchedule("dynamic", format_start=(1.0, 0.0))
    with pytest.raises(ValueError, match="between"):
        ScaleSchedule("dynamic", format_end=(-3.0, 1.0))


def test_dynamic_reward_follows_the_trainer_step():
    gt = answer_text([call("a", x=1, y=2)])
    s = sample(calls_text(call("a", x=1, y=3)), gt)  # R_max / S_max = 3 / 4
    reward = ToolRLReward(
        scale="dynamic",
        schedule_steps=10,
        format_start=(0.0, 2.0),
        format_end=(0.0, 1.0),
        format_toward=None,
    )
    # step 0: format 2 + correctness 4 * 0.75 - 2 = 1 -> 3
    assert reward([s])[0].score == pytest.approx(3.0)
    # step 5 (the trainer's step, from the reward context): format 1.5 + correctness
    # 5 * 0.75 - 2.5 = 1.25 -> 2.75, in training and in evaluation alike
    assert reward([s], context=RewardContext(5, "train"))[0].score == pytest.approx(2.75)
    assert reward([s], context=RewardContext(5, "eval"))[0].score == pytest.approx(2.75)
    # calls do not advance the schedule: only the trainer step does
    assert reward([s], context=RewardContext(5, "train"))[0].score == pytest.approx(2.75)
    assert reward([s])[0].score == pytest.approx(3.0)


def test_length_reward():
    gt = GT_RESP
    short = sample("<think>" + "w " * 256 + "</think>\n<response>x</response>", gt)
    long = sample("<think>" + "w " * 2000 + "</think>\n<response>x</response>", gt)
    out = ToolRLReward(length_reward=True)([short, long])
    # format 1 + correctness 0 + min(256 / 512, 1) = 1.5 ; capped at 1 -> 2
    assert [o.score for o in out] == [pytest.approx(1.5), pytest.approx(2.0)]


# -- parsing and the system prompt -----------------------------------------------------------
def test_parse_tool_calls_round_trip_and_errors():
    calls = [call("a", x=[1, 2]), call("b.c", s="é", d={"k": None})]
    assert parse_tool_calls(answer_text(calls)) == calls
    with pytest.raises(MalformedToolCall, match="line 2"):
        parse_tool_calls('<tool_call>\n{"name": "a", "parameters": {}}\nnope\n</tool_call>')


def test_system_prompt_lists_tools():
    tools = [{"name": "get_weather", "parameters": {"type": "dict", "properties": {}}}]
    text = toolrl_system_prompt(tools)
    assert json.dumps(tools[0]) in text and "<tool_call>" in text and "<think>" in text
    with pytest.raises(ValueError, match=r"tools\[0\]"):
        toolrl_system_prompt([{"description": "no name"}])
    with pytest.raises(TypeError, match="list"):
        toolrl_system_prompt({"name": "x"})
