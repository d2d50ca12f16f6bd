"""rm.judge: a principle-following generative judge over an OpenAI-compatible endpoint,
against the scripted local HTTP server (`chat_server`, tests/conftest.py): strict parsing, retries with a reminder, bounded
failure (down, hanging, malformed), and use in a GRPO config and an ensemble."""

import asyncio
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewardkit.types import Sample
from rewardkit_rm.judge import JudgeError, RMJudge, parse_score


def judge(server, **kw):
    return RMJudge(server.url, **{"timeout": 2.0, "backoff": 0.0, **kw})


def run(reward, samples):
    return asyncio.run(reward(samples))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The response is fine.\n<score>7</score>", 7),
        ("<score> 10 </score>", 10),
        ("<SCORE>1</SCORE>", 1),
        ("no tag at all, 7/10", None),
        ("<score>7</score> or maybe <score>8</score>", None),  # two verdicts
        ("<score>7.5</score>", None),
        ("<score>seven</score>", None),
        ("<score>11</score>", None),  # out of range
        ("<score>0</score>", None),
        ("<score></score>", None),
        ("<score>7", None),
    ],
)
def test_parse_score_is_strict(text, expected):
    assert parse_score(text, 1, 10) == expected


@given(st.text())
def test_parse_score_never_raises_and_stays_in_range(text):
    value = parse_score(text, 1, 10)
    assert value is None or 1 <= value <= 10


def test_judgement_is_scaled_and_the_prompt_carries_principle_prompt_and_response(chat_server):
    chat_server.responder = lambda body: "It follows the principle well.\n<score>8</score>"
    reward = judge(chat_server, principle="Be terse.")
    out = run(reward, [Sample([{"role": "user", "content": "2+2?"}], "4")])
    assert out[0].score == pytest.approx((8 - 1) / 9) and out[0].info["judge_score"] == 8
    text = chat_server.user_text(chat_server.requests[0])
    assert "Be terse." in text and "user: 2+2?" in text and "Response:\n4" in text
    # a per-prompt principle from the sample's meta; a sample without one is an error
    reward = judge(chat_server, principle_key="principle")
    run(reward, [Sample("q", "a", meta={"principle": "Cite sources."})])
    assert "Cite sources." in chat_server.user_text(chat_server.requests[-1])
    with pytest.raises(KeyError, match="no principle 'principle'"):
        run(reward, [Sample("q", "a")])


def test_malformed_answer_is_asked_again_with_a_reminder(chat_server):
    answers = iter(["I think it is good.", "<score>3</score>"])
    chat_server.responder = lambda body: next(answers)
    reward = judge(chat_server, low=1, high=5)
    out = run(reward, [Sample("q", "a")])
    assert out[0].score == pytest.approx(0.5)
    retry = chat_server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think it is good."}
    assert "exactly one <score>N</score>" in retry[-1]["content"]
    assert reward.stats() == {
        "judge/judgements": 1.0, "judge/calls": 2.0, "judge/retries": 1.0, "judge/malformed": 0.0
    }  # fmt: skip


def test_still_malformed_after_the_retries_is_an_error_or_a_counted_score(chat_server):
    chat_server.responder = lambda body: "<score>42</score>"
    with pytest.raises(JudgeError, match=r"no <score>N</score> \(1..10\) after 2 attempts"):
        run(judge(chat_server, max_retries=1), [Sample("q", "a")])
    assert len(chat_server.requests) == 2
    reward = judge(chat_server, max_retries=0, malformed_score=0.0)
    out = run(reward, [Sample("q", "a"), Sample("q", "b")])
    assert [o.score for o in out] == [0.0, 0.0] and all(o.info["malformed"] for o in out)
    assert reward.stats()["judge/malformed"] == 2.0


def test_a_transient_server_error_is_retried_by_the_client(chat_server):
    answers = iter([(503, "busy"), "<score>10</score>"])
    chat_server.responder = lambda body: next(answers)
    assert run(judge(chat_server), [Sample("q", "a")])[0].score == 1.0


def test_an_endpoint_that_is_down_is_a_clear_error():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reward = RMJudge(f"http://127.0.0.1:{port}/v1", timeout=1.0, http_retries=1, backoff=0.0)
    with pytest.raises(JudgeError, match=rf"127.0.0.1:{port}.*failed after 2 attempts"):
        run(reward, [Sample("q", "a")])


def test_an_endpoint_that_hangs_fails_within_the_clients_bound(chat_server):
    chat_server.responder = lambda body: chat_server.HANG
    reward = judge(chat_server, timeout=0.5, http_retries=1)
    started = time.monotonic()
    with pytest.raises(JudgeError, match="failed after 2 attempts"):
        run(reward, [Sample("q", "a")])
    # a bound, not a speed: two 0.5 s attempts, with ample slack for a loaded machine
    assert time.monotonic() - started < reward.chat.max_seconds + 10
    assert len(chat_server.requests) == 2


def test_a_non_chat_answer_is_an_error_at_once(chat_server):
    chat_server.responder = lambda body: (200, '{"unexpected": true}')
    with pytest.raises(JudgeError, match="without choices"):
        run(judge(chat_server), [Sample("q", "a")])
    assert len(chat_server.requests) == 1


def test_rm_judge_in_a_grpo_config_and_in_an_ensemble_with_rm_score(chat_server, tmp_path):
    from test_rm_rewards import saved_rm

    from rewardkit.registry import REWARDS
    from rewardkit.rewards.transforms import Ensemble
    from rewardkit.trainer.components import resolve
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit_rm.rewards import RMScore

    assert REWARDS.get("rm.judge") is RMJudge
    config = GRPOConfig(
        rewards=[{"name": "rm.judge", "options": {"url": chat_server.url, "high": 5}}]
    )
    assert isinstance(resolve(config).rewards[0].reward, RMJudge)
    with pytest.raises(ValueError, match="need high > low"):
        RMJudge(chat_server.url, low=3, high=3)
    chat_server.responder = lambda body: (
        "<score>10</score>" if "good" in chat_server.user_text(body) else "<score>1</score>"
    )
    score = RMScore(str(saved_rm(tmp_path / "rm")))
    samples = [Sample("q", "good"), Sample("q", "bad")]
    rm_scores = [o.score for o in score(samples)]
    out = Ensemble([judge(chat_server), score], mode="mean")(samples)  # the core transform
    expected = [(1.0 + rm_scores[0]) / 2, (0.0 + rm_scores[1]) / 2]
    assert [o.score for o in out] == pytest.approx(expected, abs=1e-6)
