"""Fuzzing tools.toolrl: whatever the completion, the reward is a finite number in [−3, 4]."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.rewards.lifecycle import RewardContext
from rewardkit.types import Sample
from rewardkit_tools.toolrl import ToolRLReward, format_score
from rewardkit_tools.toolrl_parse import answer_text

GROUND_TRUTHS = [
    answer_text([{"name": "a", "parameters": {"x": 1, "y": "s"}}]),
    answer_text([{"name": "a", "parameters": {}}, {"name": "b", "parameters": {"z": [1.5]}}]),
    answer_text([{"name": "a", "parameters": {"x": 1}}], response="done"),
    "<response>no tool fits</response>",
    "",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
call_lines = st.one_of(
    st.builds(
        lambda n, p: json.dumps({"name": n, "parameters": p}),
        st.sampled_from(["a", "b", "c"]),
        st.dictionaries(st.sampled_from(["x", "y", "z"]), json_values, max_size=3),
    ),
    json_values.map(json.dumps),  # wrong types: lists, numbers, objects without name
    st.builds(lambda n, p: json.dumps({"name": n, "parameters": p}), json_values, json_values),
    st.text(max_size=20),  # broken JSON
    st.just('{"name": "a", "parameters": {"x": 1}'),  # truncated
    st.just("[" * 5000 + "]" * 5000),  # deeply nested
)
fragments = st.one_of(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<tool_call>",
            "</tool_call>",
            "<response>",
            "</response>",
            "\n",
            " ",
            "<tool_call>\n",
            "\n</tool_call>",
        ]
    ),
    call_lines,
    st.text(max_size=10),
)
completions = st.one_of(
    st.lists(fragments, max_size=20).map("".join),
    st.lists(call_lines, max_size=4).map(
        lambda lines: "<think>t</think>\n<tool_call>\n" + "\n".join(lines) + "\n</tool_call>"
    ),
    st.builds(lambda frag, n: frag * n, fragments, st.integers(1, 20_000)),  # huge outputs
)


@settings(max_examples=300, deadline=None)
@given(
    completion=completions,
    gt=st.sampled_from(GROUND_TRUTHS),
    granularity=st.sampled_from(["fine", "intermediate", "coarse"]),
    scale=st.sampled_from(["static", "dynamic"]),
    step=st.integers(0, 500),
)
def test_reward_is_finite_and_in_range(completion, gt, granularity, scale, step):
    reward = ToolRLReward(granularity=granularity, scale=scale, schedule_steps=50)
    sample = Sample(prompt="p", completion=completion, meta={"ground_truth": gt})
    out = reward([sample], context=RewardContext(step))[0]
    low = -4.0 if scale == "dynamic" else -3.0  # dynamic: format [-2, 2] + correct [-2, 2] ...
    assert math.isfinite(out.score) and low <= out.score <= 4.0, (out.score, out.info)
    assert format_score(completion, gt) in (0.0, 1.0)


@settings(max_examples=100, deadline=None)
@given(completion=completions, gt=st.sampled_from(GROUND_TRUTHS))
def test_length_option_stays_bounded(completion, gt):
    out = ToolRLReward(length_reward=True)(
        [Sample(prompt="p", completion=completion, meta={"ground_truth": gt})]
    )[0]
    assert math.isfinite(out.score) and -3.0 <= out.score <= 5.0
