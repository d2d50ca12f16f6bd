"""Reward transforms on hand-computed numbers, and their error paths."""

import asyncio
import math

import pytest

from rewardkit.registry import TRANSFORMS
from rewardkit.rewards import per_sample
from rewardkit.rewards.calling import RewardError
from rewardkit.types import RewardOutput, Sample


def sig(x):
    return 1 / (1 + math.exp(-x))


def make(name, *args, **kw):
    return TRANSFORMS.get(name)(*args, **kw)


def samples_with(scores, **meta_lists):
    """One sample per score; meta[key] = meta_lists[key][i]; the score is read by `fixed`."""
    out = []
    for i, s in enumerate(scores):
        meta = {"score": s, **{k: v[i] for k, v in meta_lists.items()}}
        out.append(Sample(prompt="p", completion="x" * (i + 1), group=0, meta=meta))
    return out


@per_sample
def fixed(sample):
    return float(sample.meta["score"])


@per_sample
def doubled(sample):
    return 2.0 * sample.meta["score"]


# -- PAR ------------------------------------------------------------------------------------


def test_par_mean_of_sigmoids_against_references():
    # sample 0: r = 1, refs 0 and 2: (σ(1) + σ(-1)) / 2 = (0.731059 + 0.268941) / 2 = 0.5
    # sample 1: r = 3, one ref 1 (a plain number): σ(2) = 0.880797
    # sample 2: r = 0, refs 1, 1, 4 with k = 2: (2σ(-2) + σ(-8)) / 3
    #           = (2*0.119203 + 0.000335) / 3 = 0.079580
    par = make("par", fixed, k=1.0)
    out = par(samples_with([1.0, 3.0], reference_scores=[[0.0, 2.0], 1.0]))
    assert out[0].score == pytest.approx(0.5, abs=1e-12)
    assert out[1].score == pytest.approx(sig(2.0)) and out[1].score == pytest.approx(
        0.880797, abs=1e-6
    )
    assert out[0].info["raw"] == 1.0 and out[1].info["references"] == 1
    out = make("par", fixed, k=2.0)(samples_with([0.0], reference_scores=[[1.0, 1.0, 4.0]]))
    assert out[0].score == pytest.approx(0.079580, abs=1e-6)


def test_par_is_bounded_and_uses_its_reference_key():
    out = make("par", fixed, reference_key="refs")(samples_with([-30.0, 30.0], refs=[[0.0], [0.0]]))
    assert 0.0 < out[0].score < 1e-12 and 1 - 1e-12 < out[1].score < 1.0


def test_par_errors():
    with pytest.raises(
        ValueError, match=r"sample 0 \(group 0\).*meta\['reference_scores'\] is missing"
    ):
        make("par", fixed)(samples_with([1.0]))
    with pytest.raises(ValueError, match="11 reference scores.*at most 10"):
        make("par", fixed)(samples_with([1.0], reference_scores=[[0.0] * 11]))
    with pytest.raises(ValueError, match="is empty"):
        make("par", fixed)(samples_with([1.0], reference_scores=[[]]))
    with pytest.raises(ValueError, match="NaN"):
        make("par", fixed)(samples_with([1.0], reference_scores=[[float("nan")]]))
    with pytest.raises(RewardError, match="par: wrapped reward .* returned nan for sample 0"):
        make("par", fixed)(samples_with([float("nan")], reference_scores=[[0.0]]))


# -- LSC ------------------------------------------------------------------------------------


def test_lsc_single_reward():
    # refs 1, 3: mean 2, population std 1, z_0.85 = 1.0364334 -> r_ref = 3.0364334
    # r = 4: log σ(4 - 3.0364334) = log σ(0.9635666) = log(1 / (1 + e^-0.9635666))
    #      = log(1 / 1.3815297) = log(0.7238353) = -0.323191
    out = make("lsc", fixed)(samples_with([4.0], reference_scores=[[1.0, 3.0]]))
    assert out[0].info["ref/fixed"] == pytest.approx(3.0364334, abs=1e-6)
    assert out[0].score == pytest.approx(-0.323191, abs=1e-6)
    assert out[0].info["raw/fixed"] == 4.0


def test_lsc_sums_terms_of_several_rewards():
    # fixed: r = 1, ref key "a" = [1] (std 0) -> r_ref 1 -> log σ(0) = log 0.5 = -0.693147
    # doubled: r = 2, ref key "b" = [0, 2] (mean 1, std 1) -> r_ref 2.0364334
    #   -> log σ(-0.0364334) = log(0.4908927) = -0.711530
    # total -0.693147 - 0.711530 = -1.404677
    lsc = make("lsc", rewards=[fixed, doubled], reference_keys=["a", "b"])
    out = lsc(samples_with([1.0], a=[[1.0]], b=[[0.0, 2.0]]))
    assert out[0].score == pytest.approx(-1.404677, abs=1e-6)
    assert out[0].info["raw/doubled"] == 2.0


def test_lsc_is_stable_for_large_gaps():
    # log σ(-1000) = -1000 - log(1 + e^-1000) ≈ -1000, no overflow
    out = make("lsc", fixed)(samples_with([-1000.0], reference_scores=[[0.0]]))
    assert out[0].score == pytest.approx(-1000.0)


def test_lsc_errors():
    with pytest.raises(ValueError, match="either `reward` or `rewards`"):
        make("lsc")
    with pytest.raises(ValueError, match="reference_keys"):
        make("lsc", rewards=[fixed, doubled], reference_keys=["a"])
    with pytest.raises(ValueError, match=r"meta\['b'\] is missing"):
        make("lsc", rewards=[fixed, doubled], reference_keys=["a", "b"])(
            samples_with([1.0], a=[[1.0]])
        )


# -- ensembles ------------------------------------------------------------------------------


@per_sample
def plus_three(sample):
    return sample.meta["score"] + 3.0


@pytest.mark.parametrize(
    "mode, lam, want",
    [
        # scores of one sample with r = 1: fixed 1, doubled 2, plus_three 4
        ("mean", 1.0, (1 + 2 + 4) / 3),  # 2.333333
        ("min", 1.0, 1.0),
        ("median", 1.0, 2.0),
        # population std: mean 7/3, squares (4/3)^2 + (1/3)^2 + (5/3)^2 = 42/9 -> var 14/9,
        # std 1.247219; 7/3 - 0.5 * 1.247219 = 1.709723
        ("mean_minus_std", 0.5, 1.709723),
    ],
)
def test_ensemble_modes(mode, lam, want):
    out = make("ensemble", [fixed, doubled, plus_three], mode=mode, lam=lam)(samples_with([1.0]))
    assert out[0].score == pytest.approx(want, abs=1e-6)
    assert out[0].info["raw/plus_three"] == 4.0


def test_ensemble_median_of_even_count_and_async_member():
    async def slow_half(batch):
        await asyncio.sleep(0)
        return [s.meta["score"] / 2 for s in batch]

    # r = 4: fixed 4, doubled 8, slow_half 2, plus_three 7 -> sorted 2, 4, 7, 8 -> median 5.5
    out = make("ensemble", [fixed, doubled, slow_half, plus_three], mode="median")(
        samples_with([4.0])
    )
    assert out[0].score == 5.5


def test_ensemble_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        make("ensemble", [fixed], mode="max")
    with pytest.raises(ValueError, match="at least one reward"):
        make("ensemble", [])

    def short(batch):
        return [1.0]

    with pytest.raises(RewardError, match=r"'short' must return one value per sample \(2\), got 1"):
        make("ensemble", [short])(samples_with([1.0, 2.0]))


def test_transform_accepts_a_registered_reward_name():
    with pytest.raises(LookupError, match="unknown reward 'no_such_reward'"):
        make("par", "no_such_reward")


# -- length correction ----------------------------------------------------------------------


def token_samples(lengths, scores):
    return [
        Sample("p", "c", completion_ids=list(range(n)), group=0, meta={"score": s})
        for n, s in zip(lengths, scores, strict=True)
    ]


def test_length_correction_removes_an_exact_quadratic_bias():
    # r = len^2 on lengths 1, 2, 3: a degree-2 fit is exact, g = len^2,
    # mean g = (1 + 4 + 9) / 3 = 14/3 -> every corrected reward is 14/3 = 4.666667
    lc = make("length_correction", fixed, degree=2, min_samples=3)
    out = lc(token_samples([1, 2, 3], [1.0, 4.0, 9.0]))
    for o in out:
        assert o.score == pytest.approx(14 / 3, abs=1e-9)
    stats = lc.stats()
    assert stats["length_correction/fitted"] == 1.0
    assert stats["length_correction/coef_2"] == pytest.approx(1.0, abs=1e-9)
    assert stats["length_correction/coef_1"] == pytest.approx(0.0, abs=1e-9)


def test_length_correction_linear_fit_warm_up_and_window():
    # warm-up: 2 samples < min_samples 3 -> unchanged, info says so
    lc = make("length_correction", fixed, degree=1, min_samples=3, window=3)
    out = lc(token_samples([5, 6], [7.0, 8.0]))
    assert [o.score for o in out] == [7.0, 8.0]
    assert "warm-up: 2 of 3" in out[0].info["length_correction"]
    assert lc.stats()["length_correction/fitted"] == 0.0
    # next batch: the window (size 3) keeps only lengths 1, 2, 3 with r = 0, 3, 3.
    # least squares: mean len 2, mean r 2, slope ((-1)(-2) + 0 + (1)(1)) / (1 + 0 + 1) = 1.5,
    # intercept 2 - 1.5*2 = -1; g = 0.5, 2, 3.5; mean g = 2
    # corrected: 0 - 0.5 + 2 = 1.5, 3 - 2 + 2 = 3, 3 - 3.5 + 2 = 1.5
    out = lc(token_samples([1, 2, 3], [0.0, 3.0, 3.0]))
    assert [o.score for o in out] == pytest.approx([1.5, 3.0, 1.5], abs=1e-9)
    assert out[0].info["raw"] == 0.0 and out[0].info["fit"] == pytest.approx(0.5)
    assert lc.stats()["length_correction/window"] == 3.0


def test_length_correction_evaluation_batches_do_not_enter_the_window():
    """With the trainer's context, an eval batch is corrected with the current fit and left
    out of the window; the window is the transform's checkpoint state."""
    from rewardkit.rewards.lifecycle import RewardContext

    lc = make("length_correction", fixed, degree=1, min_samples=3, window=8)
    lc(token_samples([1, 2, 3], [0.0, 3.0, 3.0]), context=RewardContext(0, "train"))
    # the same fit as above: g(len) = 1.5 len - 1, mean g = 2
    out = lc(token_samples([4], [9.0]), context=RewardContext(1, "eval"))
    assert out[0].score == pytest.approx(9.0 - 5.0 + 2.0)
    assert lc.stats()["length_correction/window"] == 3.0  # the eval sample stayed out
    state = lc.state_dict()
    fresh = make("length_correction", fixed, degree=1, min_samples=3, window=8)
    fresh.load_state_dict(state)
    again = fresh(token_samples([4], [9.0]), context=RewardContext(1, "eval"))
    assert again[0].score == pytest.approx(out[0].score)
    lc(token_samples([4], [9.0]), context=RewardContext(1, "train"))
    assert lc.stats()["length_correction/window"] == 4.0


def test_length_correction_binned_fit():
    # lengths 1, 3, 5, 7, r = 1, 3, 5, 11, 2 bins: {1, 3} -> centre 2, mean 2; {5, 7} ->
    # centre 6, mean 8. g interpolates: g(1) = 2 (clamped), g(3) = 2 + 1*(6/4) = 3.5,
    # g(5) = 2 + 3*1.5 = 6.5, g(7) = 8 (clamped); mean g = (2 + 3.5 + 6.5 + 8) / 4 = 5
    # corrected: 1 - 2 + 5 = 4, 3 - 3.5 + 5 = 4.5, 5 - 6.5 + 5 = 3.5, 11 - 8 + 5 = 8
    lc = make("length_correction", fixed, fit="binned", bins=2, min_samples=1)
    out = lc(token_samples([1, 3, 5, 7], [1.0, 3.0, 5.0, 11.0]))
    assert [o.score for o in out] == pytest.approx([4.0, 4.5, 3.5, 8.0], abs=1e-9)


def test_length_correction_counts_policy_tokens_or_chars():
    # sample 0 has a tool token (mask 0): its policy length is 2, not 3. Lengths 2, 2, 3 with
    # r = 1, 0, 5: two distinct lengths lower the degree to 1, the line passes through
    # (2, mean(1, 0) = 0.5) and (3, 5); mean g = (0.5 + 0.5 + 5) / 3 = 2
    # corrected: 1 - 0.5 + 2 = 2.5, 0 - 0.5 + 2 = 1.5, 5 - 5 + 2 = 2
    # (counting the tool token, lengths 3, 2, 3 would give g(3) = 3, g(2) = 0: other numbers)
    s = [
        Sample("p", "ab", completion_ids=[1, 2, 3], completion_mask=[1, 0, 1], meta={"score": 1.0}),
        Sample("p", "abcd", completion_ids=[1, 2], meta={"score": 0.0}),
        Sample("p", "abc", completion_ids=[1, 2, 3], meta={"score": 5.0}),
    ]
    out = make("length_correction", fixed, min_samples=3)(s)
    assert [o.score for o in out] == pytest.approx([2.5, 1.5, 2.0], abs=1e-9)
    lc = make("length_correction", fixed, min_samples=1, unit="chars")
    lc(s)
    assert [p[0] for p in lc.window] == [2.0, 4.0, 3.0]


def test_length_correction_errors():
    with pytest.raises(ValueError, match="fit must be"):
        make("length_correction", fixed, fit="spline")
    with pytest.raises(ValueError, match="unit='chars'"):
        make("length_correction", fixed)([Sample("p", "text only", meta={"score": 1.0})])


# -- potential-based shaping ----------------------------------------------------------------


@per_sample
def stepwise(sample):
    return RewardOutput(1.0, step_rewards=[0.0, 0.0, 1.0], step_ends=[2, 5, 9], info={"k": 1})


def phi(sample, k):
    return [0.2, 0.5, 0.9][k]


def test_potential_shaping_formula():
    # gamma 0.5, Φ(s0..s2) = 0.2, 0.5, 0.9, Φ(terminal) = 0:
    # r'_0 = 0 + 0.5*0.5 - 0.2 = 0.05; r'_1 = 0 + 0.5*0.9 - 0.5 = -0.05; r'_2 = 1 + 0 - 0.9 = 0.1
    out = make("potential_shaping", stepwise, potential=phi, gamma=0.5)([Sample("p", "c")])
    assert out[0].step_rewards == pytest.approx([0.05, -0.05, 0.1])
    assert out[0].step_ends == [2, 5, 9] and out[0].score == 1.0  # score kept by default
    assert out[0].info["raw_step_rewards"] == [0.0, 0.0, 1.0] and out[0].info["inner"] == {"k": 1}


def test_potential_shaping_telescopes_with_gamma_one():
    # gamma 1: 0.3, 0.4, 0.1 -> sum 0.8 = Σ r_k - Φ(s0) = 1 - 0.2
    out = make("potential_shaping", stepwise, potential=phi, score="sum")([Sample("p", "c")])
    assert out[0].step_rewards == pytest.approx([0.3, 0.4, 0.1])
    assert out[0].score == pytest.approx(0.8)


def test_potential_shaping_errors():
    with pytest.raises(ValueError, match="gave no step_rewards for sample 0"):
        make("potential_shaping", fixed, potential=phi)(samples_with([1.0]))
    with pytest.raises(ValueError, match="potential gave"):
        make("potential_shaping", stepwise, potential=lambda s, k: float("nan"))([Sample("p", "c")])
    with pytest.raises(ValueError, match="score must be"):
        make("potential_shaping", stepwise, potential=phi, score="last")
    with pytest.raises(TypeError, match="callable"):
        make("potential_shaping", stepwise, potential=0.5)


def test_all_transforms_are_registered():
    assert {"par", "lsc", "ensemble", "length_correction", "potential_shaping"} <= set(
        TRANSFORMS.names()
    )


def test_transform_inside_the_scorer_with_an_async_inner_reward():
    from rewardkit.rewards import Scorer, WeightedReward

    @per_sample
    async def async_score(sample):
        await asyncio.sleep(0)
        return sample.meta["score"]

    # PAR of r = 1 against refs 0, 2: (σ(1) + σ(-1)) / 2 = 0.5, weight 2 -> total 1.0
    scorer = Scorer([WeightedReward("par", make("par", async_score), weight=2.0)])
    result = scorer(samples_with([1.0], reference_scores=[[0.0, 2.0]]))
    scorer.close()
    assert result.total.tolist() == pytest.approx([1.0])
    assert result.outputs[0].info["par"]["raw"] == 1.0


def test_lsc_rejects_bad_quantile():
    with pytest.raises(ValueError, match="quantile"):
        make("lsc", fixed, quantile=1.0)
