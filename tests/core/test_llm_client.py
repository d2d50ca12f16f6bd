"""rewardkit.llm_client: the judges' ask-parse-ask-again loop (the HTTP client itself is
tested through the judges, against the scripted chat server of tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from rewardkit.llm_client import ChatError, ask_until_parsed


class ScriptedChat:
    name = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []  # the messages of every request

    async def complete(self, messages):
        self.seen.append(messages)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def digit(answer: str) -> int | None:
    return int(answer) if answer.isdigit() else None


def ask(chat, retries, counts):
    question = [{"role": "user", "content": "a digit?"}]
    return asyncio.run(
        ask_until_parsed(chat, question, digit, "Only a digit.", retries, counts.append)
    )


def test_asks_again_with_the_answer_and_the_reminder_until_it_parses():
    chat, counts = ScriptedChat(["seven", "I said seven", "7"]), []
    assert ask(chat, 2, counts) == (7, ["seven", "I said seven", "7"])
    assert counts == ["calls", "retries", "calls", "retries", "calls"]
    assert chat.seen[2] == [
        {"role": "user", "content": "a digit?"},
        {"role": "assistant", "content": "seven"},
        {"role": "user", "content": "Only a digit."},
        {"role": "assistant", "content": "I said seven"},
        {"role": "user", "content": "Only a digit."},
    ]


def test_gives_up_after_the_retries():
    chat, counts = ScriptedChat(["a", "b", "c", "4"]), []
    assert ask(chat, 1, counts) == (None, ["a", "b"])
    assert counts == ["calls", "retries", "calls"]
    assert chat.answers == ["c", "4"]  # never asked a third time


def test_zero_is_a_parsed_answer_and_no_retry_means_one_question():
    assert ask(ScriptedChat(["0"]), 0, []) == (0, ["0"])
    assert ask(ScriptedChat(["x", "1"]), 0, []) == (None, ["x"])


def test_an_unreachable_endpoint_is_not_retried_here():
    chat = ScriptedChat([ChatError("http://x: connection refused"), "1"])
    with pytest.raises(ChatError, match="refused"):
        ask(chat, 3, [])
    assert chat.answers == ["1"]
