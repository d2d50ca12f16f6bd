"""Every branch of translation.exemplar, translation.multilingual, translation.chrf and
translation.bleu, with the metric judge and real sacrebleu / py3langid.

Hand numbers (see test_translation_metric_judge.py for the derivations):
  chrF("ab", ["abc"]) = 700/11 = 63.636 ; chrF of an exact match = 100.
  chrF("我喜欢猫", ["我喜欢狗"]): orders 1-4 have n-grams on both sides, P = R per order
  = 3/4, 2/3, 1/2, 0 -> average 23/48 -> F2 = 23/48 = 0.47917.
"""

import asyncio
import math

import pytest

from rewardkit.registry import REWARDS
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.scoring import Scorer, WeightedReward
from rewardkit.types import Sample
from rewardkit_translation.rewards import (
    BLEU,
    ChrF,
    ExemplarReward,
    MultilingualReward,
    outcome_values,
)

THINK = "<think>reasoning</think>"


def sample(completion, **meta):
    row = {"id": "r", "source": "abc source", "source_lang": "en", "target_lang": "de", **meta}
    return Sample(prompt="p", completion=completion, meta=row)


def scores(reward, samples):
    out = reward(samples)
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    return [o.score for o in out], out


# -- translation.exemplar ----------------------------------------------------------------
def test_exemplar_three_way_default_table():
    r = ExemplarReward()  # metric judge, chrF, margin 2
    got, out = scores(
        r,
        [
            sample(THINK + "abc", exemplar="ab", reference="abc"),  # 100 vs 63.6 -> better -> 1
            sample(THINK + "abc", exemplar="abc", reference="abc"),  # 100 vs 100 -> equal -> .5
            sample(THINK + "ab", exemplar="abc", reference="abc"),  # 63.6 vs 100 -> worse -> 0
            sample("abc", exemplar="ab", reference="abc"),  # no think block -> 0
        ],
    )
    assert got == [1.0, 0.5, 0.0, 0.0]
    assert [o.info.get("outcome") for o in out] == ["better", "equal", "worse", None]
    assert out[3].info == {"format": False, "format_error": "no <think> block"}


def test_exemplar_configurable_table():
    r = ExemplarReward(values={"better": 2.0, "worse": -1.0})  # equal keeps 0.5
    got, _ = scores(
        r,
        [
            sample(THINK + "abc", exemplar="ab", reference="abc"),
            sample(THINK + "abc", exemplar="abc", reference="abc"),
            sample(THINK + "ab", exemplar="abc", reference="abc"),
            sample("<think>x</think>Note: nothing", exemplar="abc", reference="abc"),
        ],
    )
    assert got == [2.0, 0.5, -1.0, 0.0]  # the format gate gives 0, not the worse value


def test_exemplar_margin_option_through_the_judge():
    r = ExemplarReward(judge={"type": "metric", "margin": 40})  # 36.4-point gap -> equal
    got, _ = scores(r, [sample(THINK + "ab", exemplar="abc", reference="abc")])
    assert got == [0.5]


def test_exemplar_without_reference_compares_with_the_exemplar():
    # q_p = chrF("ab", ["abc"]) = 63.6, q_e = 100; reference_free_margin 40 -> equal
    got, out = scores(ExemplarReward(), [sample(THINK + "ab", exemplar="abc")])
    assert got == [0.5] and out[0].info["against"] == "exemplar"


def test_exemplar_continuous_variant_by_hand():
    # r = clip(0.5 + (q_p - q_e) / s, 0, 1)
    r = ExemplarReward(mode="continuous", scale=100.0)
    got, _ = scores(
        r,
        [
            sample(THINK + "ab", exemplar="abc", reference="abc"),  # 0.5 + (63.636-100)/100
            sample(THINK + "abc", exemplar="ab", reference="abc"),  # 0.5 + 0.36364
            sample(THINK + "abc", exemplar="abc", reference="abc"),  # 0.5
            sample("abc", exemplar="abc", reference="abc"),  # format -> 0
        ],
    )
    assert got == pytest.approx([0.5 - 0.363636, 0.5 + 0.363636, 0.5, 0.0], abs=1e-5)
    clipped, _ = scores(
        ExemplarReward(mode="continuous", scale=20.0),
        [
            sample(THINK + "ab", exemplar="abc", reference="abc"),  # 0.5 - 1.82 -> 0
            sample(THINK + "abc", exemplar="ab", reference="abc"),  # 0.5 + 1.82 -> 1
        ],
    )
    assert clipped == [0.0, 1.0]


def test_exemplar_missing_exemplar_is_a_clear_error():
    with pytest.raises(ValueError, match="row 'r' has no 'exemplar'"):
        scores(ExemplarReward(), [sample("no format", reference="abc")])


def test_exemplar_bad_options():
    with pytest.raises(ValueError, match="unknown outcome"):
        outcome_values({"good": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        outcome_values({"better": math.nan})
    with pytest.raises(ValueError, match="mode must be"):
        ExemplarReward(mode="soft")
    with pytest.raises(ValueError, match="scale must be > 0"):
        ExemplarReward(mode="continuous", scale=0)
    with pytest.raises(ValueError, match="on_unparseable"):
        ExemplarReward(on_unparseable="skip")


def test_exemplar_runs_in_the_scorer_as_an_async_reward():
    reward = build_reward(REWARDS.get("translation.exemplar"), values={"better": 1.0})
    scorer = Scorer([WeightedReward("translation.exemplar", reward, 2.0)])
    result = scorer(
        [
            sample(THINK + "abc", exemplar="ab", reference="abc"),
            sample(THINK + "ab", exemplar="abc", reference="abc"),
        ]
    )
    assert result.total.tolist() == [2.0, 0.0]  # weight 2 x (1, 0)
    scorer.close()


# -- translation.multilingual ------------------------------------------------------------
ZH = dict(source="I like cats.", source_lang="en", target_lang="zh")


def test_multilingual_product_by_hand():
    # language zh ok, length 4/12 = 0.333 in [0.15, 0.6], chrF 23/48 -> 0.47917
    got, out = scores(
        MultilingualReward(), [sample(THINK + "我喜欢猫", reference="我喜欢狗", **ZH)]
    )
    assert got == pytest.approx([23 / 48])
    assert out[0].info["language"] == "zh" and out[0].info["length_ratio"] == pytest.approx(1 / 3)


def test_multilingual_each_factor_gates():
    de = dict(source="The museum is closed on Mondays.", source_lang="en", target_lang="de")
    r = MultilingualReward()
    got, out = scores(
        r,
        [
            sample(
                THINK + "Das Museum ist montags geschlossen.",
                reference="Das Museum ist montags geschlossen.",
                **de,
            ),
            sample(THINK + "Das Museum ist montags geschlossen.", **de),  # no reference: factor 1
            sample("Das Museum ist montags geschlossen.", **de),  # format
            sample(THINK + "Le musée est fermé le lundi, tous les lundis.", **de),  # language
            sample(THINK + "Das Museum.", **de),  # length 12/32 = 0.375 < 1.15/2 = 0.575
            sample(
                THINK + "Das Museum ist montags geschlossen, und zwar jeden Montag im "
                "ganzen Jahr, auch an Feiertagen, immer.",
                **de,
            ),  # 100/32 = 3.1 > 2.3
        ],
    )
    assert got == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert out[3].info["language"] == "fr" and out[3].info["language_ok"] is False
    assert out[4].info["length_ok"] is False and out[5].info["length_ok"] is False


def test_multilingual_options():
    de = dict(source="The museum is closed on Mondays.", source_lang="en", target_lang="de")
    short = sample(THINK + "Das Museum.", **de)  # ratio 0.375
    assert scores(MultilingualReward(length_bands={"en-de": [0.3, 2.0]}), [short])[0] == [1.0]
    assert scores(MultilingualReward(length_tolerance=4.0), [short])[0] == [1.0]  # low 0.2875
    bare = sample("Das Museum ist montags geschlossen.", **de)
    assert scores(MultilingualReward(require_format=False), [bare])[0] == [1.0]
    en = sample(
        THINK + "the cat sat",
        source="Die Katze saß auf der Matte.",
        source_lang="de",
        target_lang="en",
        reference="the cat sat on the mat",
    )
    got, out = scores(MultilingualReward(metric="bleu"), [en])
    # quality = sentence BLEU = e^-1, but the ratio 11/28 = 0.39 is below 1/1.15/2 = 0.435
    assert out[0].info["quality"] == pytest.approx(math.exp(-1), rel=1e-4)
    assert out[0].info["length_ok"] is False and got == [0.0]
    roomy = MultilingualReward(metric="bleu", length_bands={"de-en": [0.3, 2.0]})
    assert scores(roomy, [en])[0] == pytest.approx([math.exp(-1)], rel=1e-4)


def test_multilingual_bad_rows_and_options():
    with pytest.raises(ValueError, match="'xx' is not one of the supported"):
        scores(MultilingualReward(), [sample(THINK + "Hallo", target_lang="xx")])
    with pytest.raises(ValueError, match="has no 'source_lang'"):
        scores(MultilingualReward(), [sample(THINK + "Hallo", source_lang=None)])
    with pytest.raises(ValueError, match="length_bands key 'en-xx'"):
        MultilingualReward(length_bands={"en-xx": [0.5, 2]})
    with pytest.raises(ValueError, match=r"must be \[low, high\]"):
        MultilingualReward(length_bands={"en-de": [0.5]})
    with pytest.raises(ValueError, match="min_confidence"):
        MultilingualReward(min_confidence=2)


def test_multilingual_min_confidence():
    # identify("Das Museum.") is German but not certain; demanding certainty fails it
    de = dict(source="The museum.", source_lang="en", target_lang="de")
    strict = MultilingualReward(min_confidence=1.0)
    got, out = scores(strict, [sample(THINK + "Das Museum.", **de)])
    assert out[0].info["language"] == "de" and out[0].info["language_confidence"] < 1.0
    assert got == [0.0]


# -- translation.chrf / translation.bleu ---------------------------------------------------
def test_chrf_and_bleu_rewards_by_hand():
    got, _ = scores(ChrF(), [sample(THINK + "ab", reference="abc"), sample("ab", reference="abc")])
    assert got == pytest.approx([7 / 11, 0.0])  # gated: no think block -> 0
    got, _ = scores(ChrF(gate=False), [sample("ab", reference="abc")])
    assert got == pytest.approx([7 / 11])
    got, out = scores(
        BLEU(),
        [
            sample(THINK + "the cat sat", reference="the cat sat on the mat", target_lang="en"),
            sample(THINK + "x y", reference="x y", target_lang="en"),
        ],
    )
    assert got == pytest.approx([math.exp(-1), 1.0], rel=1e-4)
    assert got[1] <= 1.0  # sacrebleu's 100.00000000000004 is clipped


def test_metric_rewards_need_a_reference():
    with pytest.raises(ValueError, match="translation.bleu: dataset row 'r' has no 'reference'"):
        scores(BLEU(), [sample(THINK + "abc")])


def test_rewards_are_registered():
    for name, cls in [
        ("translation.exemplar", ExemplarReward),
        ("translation.multilingual", MultilingualReward),
        ("translation.chrf", ChrF),
        ("translation.bleu", BLEU),
    ]:
        assert REWARDS.get(name) is cls
