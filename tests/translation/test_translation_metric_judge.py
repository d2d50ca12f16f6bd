"""sacrebleu metrics on hand-computed numbers and the metric judge (the embedded default).

chrF by hand (sacrebleu defaults: char order 6, beta 2, whitespace removed; precision and
recall are averaged over the orders where both sides have n-grams, then F-beta):
  hyp "ab", ref "abc": order 1: P = 2/2, R = 2/3; order 2: P = 1/1, R = 1/2;
  order 3+: the hypothesis has none. avgP = 1, avgR = (2/3 + 1/2)/2 = 7/12,
  F2 = 5 * 1 * 7/12 / (4 * 1 + 7/12) = 35/55 = 7/11  ->  63.6364
Sentence BLEU (effective order) of "the cat sat" vs "the cat sat on the mat":
  p1 = p2 = p3 = 1 (order 4 left out), BP = exp(1 - 6/3) = e^-1  ->  36.788
"""

import asyncio
import math

import pytest

from rewardkit_translation.judges import JudgeRequest, Outcome, build_judge, outcome_from_scores
from rewardkit_translation.judges.metric import MetricJudge
from rewardkit_translation.metrics import bleu_tokenize, corpus_scores, sentence_score

CHRF_AB_ABC = 100 * 7 / 11


def test_sentence_chrf_by_hand():
    assert sentence_score("chrf", "ab", ["abc"]) == pytest.approx(CHRF_AB_ABC)
    assert sentence_score("chrf", "abc", ["abc"]) == pytest.approx(100.0)


def test_sentence_bleu_by_hand():
    got = sentence_score("bleu", "the cat sat", ["the cat sat on the mat"], "en")
    assert got == pytest.approx(100 * math.exp(-1), rel=1e-4)


def test_bleu_tokenizer_follows_the_target_language():
    assert [bleu_tokenize(x) for x in ("zh", "ja", "ko", "de", None)] == [
        "zh",
        "char",
        "char",
        "13a",
        "13a",
    ]


def test_bad_metric_and_references():
    with pytest.raises(ValueError, match="metric must be one of chrf, bleu"):
        sentence_score("meteor", "a", ["a"])
    with pytest.raises(ValueError, match="references must be a non-empty list"):
        sentence_score("chrf", "a", [])


def test_corpus_scores_carry_the_signature():
    out = corpus_scores(["ab"], ["abc"], target_lang="de")
    assert out["chrf"].score == pytest.approx(CHRF_AB_ABC)  # one segment: same as sentence
    assert out["chrf"].signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no")
    assert "tok:13a" in out["bleu"].signature and "version:" in out["bleu"].signature
    assert "tok:zh" in corpus_scores(["我"], ["我"], target_lang="zh")["bleu"].signature
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        corpus_scores(["a"], ["a", "b"])


@pytest.mark.parametrize(
    "q_p, q_e, margin, expected",
    [
        (50, 49, 2, Outcome.EQUAL),
        (50, 48, 2, Outcome.EQUAL),
        (50, 47.9, 2, Outcome.BETTER),
        (40, 50, 2, Outcome.WORSE),
        (40, 50, 10, Outcome.EQUAL),
    ],
)
def test_outcome_from_scores(q_p, q_e, margin, expected):
    assert outcome_from_scores(q_p, q_e, margin) is expected


def judge(j, **kw):
    return asyncio.run(j.judge([JudgeRequest(source="src", **kw)]))[0]


def test_metric_judge_against_the_reference():
    j = MetricJudge("chrf", margin=2.0)
    worse = judge(j, translation="ab", exemplar="abc", reference="abc")
    assert worse.outcome is Outcome.WORSE  # 63.64 vs 100: 36.4 points below, margin 2
    assert (worse.q_policy, worse.q_exemplar) == pytest.approx((CHRF_AB_ABC, 100.0))
    better = judge(j, translation="abc", exemplar="ab", reference="abc")
    assert better.outcome is Outcome.BETTER
    equal = judge(j, translation="abc", exemplar="abc", reference="abc")
    assert equal.outcome is Outcome.EQUAL
    # a margin of 40 points makes the 36.4-point gap equal
    assert (
        judge(MetricJudge(margin=40), translation="ab", exemplar="abc", reference="abc").outcome
        is Outcome.EQUAL
    )


def test_metric_judge_without_reference_uses_similarity_to_the_exemplar():
    # q_p = chrF("ab", ["abc"]) = 63.64 ; q_e = 100 ; gap 36.4
    loose = judge(MetricJudge(reference_free_margin=40), translation="ab", exemplar="abc")
    assert loose.outcome is Outcome.EQUAL
    assert loose.info["against"] == "exemplar"
    strict = judge(MetricJudge(reference_free_margin=30), translation="ab", exemplar="abc")
    assert strict.outcome is Outcome.WORSE
    assert MetricJudge().stats()["judge/judged"] == 0.0


def test_metric_judge_bleu():
    j = MetricJudge("bleu", margin=1.0)
    got = judge(
        j,
        translation="the cat sat",
        exemplar="the cat sat on the mat",
        reference="the cat sat on the mat",
        target_lang="en",
    )
    assert got.q_policy == pytest.approx(100 * math.exp(-1), rel=1e-4)
    assert got.outcome is Outcome.WORSE


def test_metric_judge_bad_input():
    with pytest.raises(ValueError, match="margin must be >= 0"):
        MetricJudge(margin=-1)
    with pytest.raises(ValueError, match="metric must be one of"):
        MetricJudge("ter")
    with pytest.raises(ValueError, match="empty exemplar"):
        judge(MetricJudge(), translation="a", exemplar="  ")


def test_build_judge():
    assert isinstance(build_judge(None), MetricJudge)
    assert build_judge({"type": "metric", "metric": "bleu", "margin": 3}).margin == 3
    with pytest.raises(ValueError, match="judge type must be 'metric' or 'llm'"):
        build_judge({"type": "human"})
    with pytest.raises(TypeError, match="unexpected keyword"):
        build_judge({"type": "metric", "margn": 1})
