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
            assert all(-1.0 <= p <= 1.0 for p in _prefix_returns(delta_steps(r, last)))
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
