"""Action parsing: accepted forms, aliases, and what is rejected."""

from __future__ import annotations

import pytest

from rewardkit_agents.envs.parsing import committed_text, parse_action

ACTIONS = ("up", "down", "left", "right")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("up", "up"),
        ("  Down.\n", "down"),
        ("<action>LEFT</action>", "left"),
        ("I think so.\n<action> right </action>", "right"),
        ("<action>up</action> no wait <action>down</action>", "down"),  # last tag wins
        ("Let me see.\nAction: Left", "left"),
        ("Action: up\nAction: right", "right"),
        ("north", "up"),  # alias
        ("<action>go north</action>", "up"),  # multi-word alias
    ],
)
def test_accepted(text, expected):
    parsed = parse_action(text, ACTIONS, {"north": "up", "go north": "up"})
    assert parsed.valid and parsed.action == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty action"),
        ("<action></action>", "empty action"),
        ("I will not go up", "unknown action"),  # a mention is not a commitment
        ("<action>jump</action>", "unknown action 'jump'"),
        ("up down", "unknown action 'up down'"),
    ],
)
def test_rejected_with_reason(text, reason):
    parsed = parse_action(text, ACTIONS)
    assert not parsed.valid and parsed.action is None
    assert reason in parsed.error and "up, down, left, right" in parsed.error


def test_long_text_is_shortened_in_the_error():
    parsed = parse_action("x" * 500, ACTIONS)
    assert not parsed.valid and len(parsed.error) < 120


def test_bad_arguments():
    with pytest.raises(TypeError, match="must be text"):
        parse_action(3, ACTIONS)
    with pytest.raises(ValueError, match="alias 'n' points to 'north'"):
        parse_action("n", ACTIONS, {"n": "north"})


def test_committed_text():
    assert committed_text("think <action>a</action> then <action> b </action>") == "b"
    assert committed_text("think\nAction: left\nmore") == "left"
    assert committed_text("just words") == "just words"
