"""Clip and Delta (arXiv 2410.15115): hand-computed values and the no-farming property."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.registry import TRANSFORMS
from rewardkit.rewards.base import per_sample
from rewardkit.types import RewardOutput, Sample
from rewardkit_math.transforms import Clip, Delta, clip_steps, delta_steps


def _prefix_returns(rewards):
    out, total = [], 0.0
    for r in rewards:
        total += r
        out.append(total)
    return out


@per_sample
def fake_prm(sample: Sample) -> RewardOutput:
    """A stand-in PRM: the step rewards stored in the sample's meta."""
    steps = sample.meta["steps"]
    return RewardOutput(
        0.5,
        token_rewards=[1.0] * (len(steps) * 2),
        step_rewards=steps,
        step_ends=[2 * k + 1 for k in range(len(steps))],
        info={"prm": "fake"},
    )


def test_clip_and_delta_by_hand():
    r = [0.95, 0.5, 0.8]
    # min(r - 0.9, 0): (0.05 -> 0, -0.4, -0.1)
    assert clip_steps(r) == pytest.approx([0.0, -0.4, -0.1])
    # r_k - r_{k+1}: (0.45, -0.3), last 0 or kept 0.8
    assert delta_steps(r) == pytest.approx([0.45, -0.3, 0.0])
    assert delta_steps(r, "keep") == pytest.approx([0.45, -0.3, 0.8])
    assert delta_steps([]) == []
    # clip then delta by wrapping: (0, -0.4, -0.1) -> (0.4, -0.3, 0)
    [out] = Delta(Clip(fake_prm))([Sample("q", "c", meta={"steps": r})])
    assert out.step_rewards == pytest.approx([0.4, -0.3, 0.0])
    assert out.step_ends == [1, 3, 5] and out.score == 0.0
    assert out.info["inner"]["raw"] == 0.5  # Clip saw the PRM's 0.5
    assert out.info["inner"]["raw_step_rewards"] == r


def test_registered_and_score_modes():
    sample = Sample("q", "c", meta={"steps": [0.1, 0.7]})
    [out] = TRANSFORMS.get("math.clip")(fake_prm, eta=0.5, score="sum")([sample])
    assert out.step_rewards == pytest.approx([-0.4, 0.0]) and out.score == pytest.approx(-0.4)
    assert out.token_rewards is None  # stale token rewards are dropped
    [out] = TRANSFORMS.get("math.clip")(fake_prm, score="keep")([sample])
    assert out.score == 0.5
    delta = TRANSFORMS.get("math.delta")(fake_prm, delta_last="keep")
    assert delta([Sample("q", "c", meta={"steps": [0.3]})])[0].step_rewards == [0.3]


def test_bad_input():
    with pytest.raises(ValueError, match="no step_rewards"):
        Clip(lambda samples: [1.0] * len(samples))([Sample("q", "c")])
    with pytest.raises(ValueError, match="delta_last"):
        Delta(fake_prm, delta_last="drop")
    with pytest.raises(ValueError, match="score"):
        Clip(fake_prm, score="max")
    with pytest.raises(TypeError, match="expected a reward"):
        Clip(3)


step_rewards = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12)


@given(step_rewards, st.integers(0, 11), st.integers(1, 50), st.floats(0.0, 1.0))
@settings(max_examples=300, deadline=None)
def test_repeating_a_step_does_not_farm_reward(rewards, which, repeats, eta):
    """Insert `repeats` copies of one step: the raw PRM return of a prefix can grow without
    bound, but after Clip, Delta or both every prefix return stays inside a fixed band."""
    k = which % len(rewards)
    farmed = rewards[: k + 1] + [rewards[k]] * repeats + rewards[k + 1 :]
    for r in (rewards, farmed):
        clipped = clip_steps(r, eta)
        assert max(_prefix_returns(clipped)) <= 0.0  # every clipped reward is <= 0
        for last in ("zero", "keep"):
            # delta telescopes: a prefix of m steps returns r_1 - r_{m+1} (or r_1 in full)
            deltas = _prefix_returns(delta_steps(r, last))  # (1e-9: float rounding of sums)
            assert all(-1.0 - 1e-9 <= p <= 1.0 + 1e-9 for p in deltas)
            # clip then delta: values in [-eta, 0], so prefixes stay in [-eta, eta]
            both = _prefix_returns(delta_steps(clipped, last))
            assert all(-eta - 1e-9 <= p <= eta + 1e-9 for p in both)
    # and the raw return did grow with the repeats (what the transforms prevent)
    assert sum(farmed) == pytest.approx(sum(rewards) + repeats * rewards[k])


def test_a_high_scoring_repeated_step_farms_raw_reward_but_not_transformed():
    step = 0.95
    raw = [step] * 40
    assert sum(raw) == pytest.approx(38.0)  # raw PRM: 40 repeats earn 38
    assert sum(clip_steps(raw)) == 0.0  # clip: min(0.95 - 0.9, 0) = 0 per step
    assert sum(delta_steps(raw)) == 0.0  # delta: r_k - r_{k+1} = 0 per step


# -- the transforms together with core's `process` estimator ---------------------------------


def _first_token_advantages(transform, prm_steps, **estimator_options):
    """First-token advantage of each sample of one group of correct samples (outcome 1 each)
    whose PRM steps are `prm_steps`, through `transform` and core's `process` estimator."""
    from rewardkit.registry import ADVANTAGES
    from rewardkit.rewards.scoring import Scorer, WeightedReward
    from rewardkit.types import RolloutBatch

    samples = [
        Sample("q", "c", completion_ids=list(range(2 * len(s))), group=0, meta={"steps": s})
        for s in prm_steps
    ]
    scorer = Scorer(
        [
            WeightedReward("success", lambda b: [1.0] * len(b)),
            WeightedReward("prm", transform(fake_prm)),
        ]
    )
    result = scorer(samples)
    scorer.close()
    batch = RolloutBatch.from_samples(samples, result.outputs, result.total)
    adv = ADVANTAGES.get("process")(**estimator_options)(batch)
    return [float(adv[i, 0]) for i in range(len(samples))]


@pytest.mark.parametrize(
    ("transform", "want"), [(Clip, 0.2), (Delta, 0.225), (lambda r: Delta(Clip(r)), 0.2)]
)
def test_repeating_a_good_step_does_not_raise_the_advantage_through_process(transform, want):
    """Issue 17's example: two correct samples, A with PRM steps [0.5, 0.95] (Clip:
    [-0.4, 0]), B repeating a 0.95 step K times (Clip: [0] * K). With a per-step group
    baseline (b = -0.4 / (2 + K)) every extra step of B added -b: B's first-token advantage
    was 0.4K/(2+K), 0.13 at K=1, 0.33 at K=10, 0.38 at K=50 (farming). With the default
    per-sample baseline b = mean of the samples' process returns = (-0.4 + 0) / 2 = -0.2, B
    gets 0 - (-0.2) = 0.2 and A gets -0.4 + 0.2 = -0.2 whatever K is (Clip; Delta:
    A = [-0.45, 0], so 0.225 and -0.225; Clip then Delta: A = [-0.4, 0])."""
    b_first = []
    for k in (1, 10, 50):
        a, b = _first_token_advantages(transform, [[0.5, 0.95], [0.95] * k])
        b_first.append(b)
        assert a == pytest.approx(-b, abs=1e-6)
    assert b_first[0] == pytest.approx(b_first[1], abs=1e-6) == pytest.approx(b_first[2], abs=1e-6)
    assert b_first[0] == pytest.approx(want, abs=1e-6)


def test_the_per_step_baseline_farms_as_the_issue_computed():
    """baseline="step" (DeepSeekMath's process supervision, kept as a named option) is the
    farmable one: B's first-token advantage is 0.4K/(2+K)."""
    for k in (1, 10, 50):
        _, b = _first_token_advantages(Clip, [[0.5, 0.95], [0.95] * k], baseline="step")
        assert b == pytest.approx(0.4 * k / (2 + k), abs=1e-6)


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    st.integers(0, 5),
    st.integers(1, 30),
    st.sampled_from(["sample", "none"]),
)
@settings(max_examples=60, deadline=None)
def test_no_repetition_raises_any_first_token_advantage(steps, which, repeats, baseline):
    """For any PRM steps, repeating one of B's steps never raises B's first-token advantage
    under Clip (every clipped reward is <= 0, and neither baseline counts steps)."""
    k = which % len(steps)
    other = [0.5, 0.95]
    _, before = _first_token_advantages(Clip, [other, steps], baseline=baseline)
    farmed = steps[: k + 1] + [steps[k]] * repeats + steps[k + 1 :]
    _, after = _first_token_advantages(Clip, [other, farmed], baseline=baseline)
    assert after <= before + 1e-6
