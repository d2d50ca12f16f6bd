"""The LLM judge over HTTP: a scripted OpenAI-compatible server on 127.0.0.1 (the
`chat_server` fixture of tests/conftest.py)."""

import asyncio

import pytest

from rewardkit.types import Sample
from rewardkit_translation.chat import ChatError, OpenAIChat, TransformersChat
from rewardkit_translation.judges import JudgeRequest, Outcome, build_judge
from rewardkit_translation.judges.llm import (
    LLMJudge,
    combine_orders,
    parse_verdict,
    policy_outcome,
)
from rewardkit_translation.rewards import ExemplarReward

ROW = {
    "id": "r1",
    "source": "The cat sleeps.",
    "source_lang": "en",
    "target_lang": "de",
    "exemplar": "Die Katze schläft.",
    "reference": "Die Katze schläft gerade.",
}


def request(translation: str, **kw) -> JudgeRequest:
    return JudgeRequest(
        source=ROW["source"],
        translation=translation,
        exemplar=ROW["exemplar"],
        source_lang="en",
        target_lang="de",
        **kw,
    )


def judge_with(server, **kw) -> LLMJudge:
    return build_judge({"type": "llm", "url": server.url, "model": "judge", "backoff": 0.01, **kw})


def shown_pair(prompt: str) -> tuple[str, str]:
    """(translation A, translation B) as the judge prompt shows them."""
    a = prompt.split("[Translation A]\n", 1)[1].split("\n\n[Translation B]", 1)[0]
    b = prompt.split("[Translation B]\n", 1)[1].split("\n\nYou may reason", 1)[0]
    return a, b


def prefers(server, word: str):
    """A fair judge: the translation containing `word` is better, else a tie."""

    def respond(body):
        if body["messages"][-1]["content"].startswith("Your answer"):
            raise AssertionError("no retry expected")
        a, b = shown_pair(server.user_text(body))
        if word in a and word not in b:
            return "A keeps the meaning. [[A]]"
        if word in b and word not in a:
            return "B is more accurate. [[B]]"
        return "Both are fine. [[TIE]]"

    return respond


def run(j, *requests):
    return asyncio.run(j.judge(list(requests)))


@pytest.fixture
def pair(chat_server):
    return chat_server


# -- parsing and order logic ------------------------------------------------------------
@pytest.mark.parametrize(
    "text, verdict",
    [
        ("[[A]]", "A"),
        ("reasoning ... so [[B]]", "B"),
        ("[[tie]]", "TIE"),
        ("[[ A ]]", "A"),
        ("A", None),
        ("The answer is A.", None),
        ("[A]", None),
        ("", None),
        ("[[A]] no wait [[B]]", None),
        ("[[A]] [[A]]", None),
        ("[[C]]", None),
    ],
)
def test_parse_verdict_is_strict(text, verdict):
    assert parse_verdict(text) == verdict


def test_policy_outcome_and_order_combination():
    assert policy_outcome("A", policy_is_a=True) is Outcome.BETTER
    assert policy_outcome("A", policy_is_a=False) is Outcome.WORSE
    assert policy_outcome("B", policy_is_a=False) is Outcome.BETTER
    assert policy_outcome("TIE", policy_is_a=True) is Outcome.EQUAL
    assert combine_orders(Outcome.BETTER, Outcome.BETTER) == (Outcome.BETTER, False)
    assert combine_orders(Outcome.BETTER, Outcome.WORSE) == (Outcome.EQUAL, True)
    assert combine_orders(Outcome.WORSE, None) == (None, False)


# -- over HTTP ---------------------------------------------------------------------------
def test_both_orders_are_asked_and_agreement_counts(pair):
    pair.responder = prefers(pair, "gerade")
    j = judge_with(pair)
    better, worse, tie = run(
        j,
        request("Die Katze schläft gerade."),
        request("Der Hund bellt."),
        JudgeRequest("s", "Die Katze.", "Die Katze!", source_lang="en", target_lang="de"),
    )
    assert better.outcome is Outcome.BETTER and better.info["verdicts"] == ["A", "B"]
    # exemplar "Die Katze schläft." holds no "gerade" and neither does "Der Hund bellt." -> tie
    assert worse.outcome is Outcome.EQUAL and tie.outcome is Outcome.EQUAL
    assert len(pair.requests) == 6  # 3 pairs x 2 orders
    assert all(r["path"] == "/v1/chat/completions" and r["model"] == "judge" for r in pair.requests)
    prompts = [pair.user_text(r) for r in pair.requests]
    orders = {shown_pair(p) for p in prompts if "gerade" in p}
    assert orders == {
        ("Die Katze schläft gerade.", "Die Katze schläft."),
        ("Die Katze schläft.", "Die Katze schläft gerade."),
    }
    assert j.stats()["judge/pairs"] == 3 and j.stats()["judge/disagreements"] == 0


def test_exemplar_wins_both_orders(pair):
    pair.responder = prefers(pair, "schläft.")  # only the exemplar ends like this
    (got,) = run(judge_with(pair), request("Die Katze ruht"))
    assert got.outcome is Outcome.WORSE


def test_position_bias_disagreement_is_equal(pair):
    pair.responder = lambda body: "The first one. [[A]]"  # always prefers position A
    j = judge_with(pair)
    (got,) = run(j, request("Die Katze schläft gerade."))
    assert got.outcome is Outcome.EQUAL and got.info["disagreed"] is True
    assert j.stats()["judge/disagreements"] == 1


def test_unparseable_answer_is_retried_with_a_reminder(pair):
    def respond(body):
        if len(body["messages"]) == 2:  # first try: no verdict token
            return "Translation A is clearly better."
        assert body["messages"][-1]["content"].startswith("Your answer did not contain")
        assert body["messages"][-2] == {
            "role": "assistant",
            "content": "Translation A is clearly better.",
        }
        a, _ = shown_pair(pair.user_text(body))
        return "[[A]]" if "gerade" in a else "[[B]]"

    pair.responder = respond
    j = judge_with(pair, max_retries=2)
    (got,) = run(j, request("Die Katze schläft gerade."))
    assert got.outcome is Outcome.BETTER
    stats = j.stats()
    assert stats["judge/calls"] == 4 and stats["judge/retries"] == 2
    assert stats["judge/unparseable_answers"] == 0


def test_still_unparseable_after_retries_is_counted(pair):
    pair.responder = lambda body: "I cannot decide between [[A]] and [[B]]."
    j = judge_with(pair, max_retries=1)
    (got,) = run(j, request("Die Katze."))
    assert got.outcome is None and got.unparseable
    assert len(pair.requests) == 4  # 2 orders x (1 try + 1 retry)
    stats = j.stats()
    assert stats["judge/unparseable_answers"] == 2 and stats["judge/unparseable_pairs"] == 1


@pytest.mark.parametrize("policy, expected", [("equal", 0.5), ("worse", 0.0)])
def test_reward_scores_and_reports_unparseable(pair, policy, expected):
    pair.responder = lambda body: "no verdict"
    reward = ExemplarReward(
        judge={"type": "llm", "url": pair.url, "max_retries": 0}, on_unparseable=policy
    )
    (out,) = asyncio.run(reward([Sample("p", "<think>x</think>Die Katze.", meta=ROW)]))
    assert out.score == expected and out.info["unparseable"] is True
    assert reward.stats()["judge/unparseable_pairs"] == 1
    assert reward.stats()["judge/unparseable_scored"] == 1


def test_reward_can_raise_on_unparseable(pair):
    pair.responder = lambda body: "no verdict"
    reward = ExemplarReward(
        judge={"type": "llm", "url": pair.url, "max_retries": 0}, on_unparseable="raise"
    )
    with pytest.raises(RuntimeError, match="unparseable judge verdict"):
        asyncio.run(reward([Sample("p", "<think>x</think>Die Katze.", meta=ROW)]))


def test_llm_reward_end_to_end_with_format_gate(pair):
    pair.responder = prefers(pair, "gerade")
    reward = ExemplarReward(
        judge={"type": "llm", "url": pair.url}, values={"better": 1.0, "equal": 0.25, "worse": -1.0}
    )
    samples = [
        Sample("p", c, meta=ROW)
        for c in (
            "<think>ok</think>Die Katze schläft gerade.",  # better -> 1.0
            "<think>ok</think>Die Katze ruht.",  # tie both orders -> equal -> 0.25
            "Die Katze schläft gerade.",  # no think block -> 0, never sent to the judge
        )
    ]
    out = asyncio.run(reward(samples))
    assert [o.score for o in out] == [1.0, 0.25, 0.0]
    assert len(pair.requests) == 4
    assert "reference translation" in pair.user_text(pair.requests[0])  # use_reference


def test_reward_rejects_continuous_mode_with_llm_judge(pair):
    with pytest.raises(ValueError, match="continuous needs a judge that returns quality"):
        ExemplarReward(judge={"type": "llm", "url": pair.url}, mode="continuous")


def test_transient_http_errors_are_retried(pair):
    calls = []

    def respond(body):
        calls.append(1)
        return (503, "busy") if len(calls) == 1 else "[[TIE]]"

    pair.responder = respond
    chat = OpenAIChat(pair.url, http_retries=2, backoff=0.01)
    assert asyncio.run(chat.complete([{"role": "user", "content": "hi"}])) == "[[TIE]]"
    assert len(calls) == 2


def test_client_errors_fail_fast_naming_the_url(pair):
    pair.responder = lambda body: (400, '{"error": "unknown model"}')
    chat = OpenAIChat(pair.url, http_retries=3, backoff=0.01)
    with pytest.raises(ChatError, match=r"127\.0\.0\.1.*HTTP 400.*unknown model"):
        chat.complete_sync([{"role": "user", "content": "hi"}])
    assert len(pair.requests) == 1


def test_malformed_endpoint_payload(pair):
    pair.responder = lambda body: (200, "not json at all")
    with pytest.raises(ChatError, match="invalid JSON"):
        OpenAIChat(pair.url).complete_sync([{"role": "user", "content": "hi"}])


def test_unreachable_endpoint(pair):
    url = pair.url
    pair.close()
    with pytest.raises(ChatError, match="failed"):
        OpenAIChat(url, http_retries=1, backoff=0.01, timeout=2).complete_sync(
            [{"role": "user", "content": "hi"}]
        )


def test_bad_endpoint_options():
    with pytest.raises(ValueError, match="must start with http"):
        OpenAIChat("127.0.0.1:8000")
    with pytest.raises(ValueError, match="either `url`"):
        build_judge({"type": "llm", "url": "http://x", "path": "/m"})
    with pytest.raises(ValueError, match="needs `url`"):
        build_judge({"type": "llm"})
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        build_judge({"type": "llm", "url": "http://x", "max_retries": -1})


def test_local_transformers_judge_counts_unparseable_answers():
    """The local-model path: a random tiny chat model cannot answer [[A]]/[[B]]/[[TIE]]."""
    from rewardkit.tiny import build_tiny_model

    model, tokenizer = build_tiny_model(seed=0, hidden_size=32, num_layers=1)
    chat = TransformersChat("tiny", max_new_tokens=8, model=model, tokenizer=tokenizer)
    answer = chat.complete_sync([{"role": "user", "content": "Which is better?"}])
    assert isinstance(answer, str)
    j = LLMJudge(chat, max_retries=1)
    (got,) = run(j, request("Die Katze."))
    assert parse_verdict(answer) is None  # random characters hold no verdict token
    assert got.unparseable and j.stats()["judge/calls"] == 4


def test_llm_exemplar_reward_inside_the_scorer(pair):
    """The trainer's scorer awaits the async reward; the HTTP calls run in threads."""
    from rewardkit.rewards.scoring import Scorer, WeightedReward

    pair.responder = prefers(pair, "gerade")
    reward = ExemplarReward(judge={"type": "llm", "url": pair.url})
    scorer = Scorer([WeightedReward("translation.exemplar", reward)], timeout=30)
    result = scorer(
        [
            Sample("p", "<think>ok</think>Die Katze schläft gerade.", meta=ROW, group=0),
            Sample("p", "<think>ok</think>Die Katze ruht.", meta=ROW, group=0),
        ]
    )
    assert result.total.tolist() == [1.0, 0.5]
    assert result.outputs[0].info["translation.exemplar"]["outcome"] == "better"
    scorer.close()
