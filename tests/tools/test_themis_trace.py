"""Themis trace format, parser and the generate → call tool → observe loop."""

from __future__ import annotations

import pytest

from rewardkit_tools.themis.loop import call_tool, tool_loop
from rewardkit_tools.themis.tools import make_toolbox
from rewardkit_tools.themis.trace import (
    ToolStep,
    Trace,
    TraceParseError,
    parse_call,
    parse_trace,
    render,
    segments,
)

EOS = "<eos>"
CALL = (
    "<start_tool> Thought: add them\nAction: Calculator\nAction Input: 2 + 3\n<start_observation>"
)
TRACE = Trace([ToolStep("add them", "Calculator", "2 + 3", "5")], "5 matches the answer.")


def scripted(chunks: list[str]):
    """A generator that returns the given chunks in order and records what it was shown."""
    seen: list[str] = []

    def generate(text: str) -> str:
        seen.append(text)
        return chunks[len(seen) - 1] if len(seen) <= len(chunks) else EOS

    return generate, seen


def test_render_exact_text_and_parse_back():
    text = render("What is 2 + 3?", "5", TRACE, EOS)
    assert text == (
        "### USER:\nQuestion: What is 2 + 3?\nAnswer: 5\n### ASSISTANT:\n"
        "<start_tool> Thought: add them\nAction: Calculator\nAction Input: 2 + 3\n"
        "<start_observation> Observation: 5\n"
        "<start_work> Work: 5 matches the answer.<eos>"
    )
    assert parse_trace(text, EOS) == TRACE


def test_segments_label_every_piece():
    kinds = [k for k, _ in segments("q", "a", TRACE, EOS)]
    assert kinds == ["prompt", "answer", "prompt", "tool", "observation", "rationale"]
    no_rationale = segments("q", "a", TRACE, EOS, include_rationale=False)
    assert no_rationale[-1] == ("rationale", "<start_work><eos>")


def test_parse_call_and_its_errors():
    assert parse_call(CALL) == ToolStep("add them", "Calculator", "2 + 3")
    assert parse_call("Thought: done\nAction: Finished\n").action == "Finished"
    with pytest.raises(TraceParseError, match="Action Input"):
        parse_call("Thought: hmm\nAction: Calculator\n")
    with pytest.raises(TraceParseError, match="empty"):
        parse_call("Thought: x\nAction: \nAction Input: 1")
    with pytest.raises(TraceParseError, match="ASSISTANT"):
        parse_trace("no header")


def test_loop_one_call_then_work():
    generate, seen = scripted([CALL, "<start_work> Work: 5 matches the answer.<eos>"])
    text, trace = tool_loop(generate, "What is 2 + 3?", "5", make_toolbox(["Calculator"]), EOS)
    assert text == render("What is 2 + 3?", "5", TRACE, EOS)
    assert trace == TRACE
    assert seen[1].endswith("<start_observation> Observation: 5\n")  # observation appended


def test_loop_error_observations_never_crash():
    box = make_toolbox(["Calculator"])
    chunks = [
        "<start_tool> Thought: t\nAction: Browser\nAction Input: x\n<start_observation>",
        "<start_tool> Thought: t\nAction: Calculator\nAction Input: 1 / 0\n<start_observation>",
        "<start_tool> garbage without fields <start_observation>",
        "never reached",
    ]
    generate, seen = scripted(chunks)
    text, trace = tool_loop(generate, "q", "a", box, EOS)
    observations = [s.observation for s in trace.steps]
    assert observations[0] == "Error: unknown tool 'Browser'; available: Calculator"
    assert observations[1] == "Error: CalculatorError: division by zero"
    assert observations[2].startswith("Error: expected 'Thought")
    # three calls at most: the loop writes <start_work> itself, then asks for the rationale
    assert len(trace.steps) == 3 and len(seen) == 4
    assert seen[3].endswith("<start_work> Work:") and text.endswith(EOS)


def test_loop_at_most_three_calls():
    generate, seen = scripted([CALL] * 10)
    text, trace = tool_loop(generate, "q", "5", make_toolbox(["Calculator"]), EOS)
    assert len(trace.steps) == 3 and text.count("<start_tool>") == 3
    assert len(seen) == 4  # 3 calls + the rationale
    # the 4th chunk (another call) is cut at its first trace token: an empty rationale
    assert text.endswith("Observation: 5\n<start_work> Work:<eos>") and trace.rationale == ""


def test_loop_stops_without_a_call_and_on_finished():
    generate, seen = scripted(["just text<eos>", " fine<eos>"])
    text, trace = tool_loop(generate, "q", "a", {}, EOS)
    assert trace.steps == [] and trace.rationale == "fine"
    assert text.endswith("### ASSISTANT:\njust text<start_work> Work: fine<eos>")
    generate, _ = scripted(
        [
            "<start_tool> Thought: ok\nAction: Finished\nAction Input: \n<start_observation>",
            " checked<eos>",
        ]
    )
    text, trace = tool_loop(generate, "q", "a", make_toolbox(["Calculator"]), EOS)
    assert trace.steps == [] and trace.rationale == "checked"


def test_loop_max_calls_zero_and_validation():
    generate, seen = scripted([" direct<eos>"])
    text, trace = tool_loop(generate, "q", "a", {}, EOS, max_calls=0)
    assert trace.steps == [] and trace.rationale == "direct" and len(seen) == 1
    with pytest.raises(ValueError, match="max_calls"):
        tool_loop(generate, "q", "a", {}, EOS, max_calls=-1)


def test_call_tool_strips_special_tokens_and_truncates():
    box = {"Echo": lambda s: s}
    out = call_tool(box, ToolStep("", "Echo", "<start_work> x" + "y" * 1000))
    assert "<start_work>" not in out and len(out) == 400
