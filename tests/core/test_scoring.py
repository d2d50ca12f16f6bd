"""Scoring engine: concurrency, timeouts, weighted sums, NaN errors, on_error policy."""

import asyncio
import math
import time

import pytest

from rewardkit.rewards import RewardError, Scorer, WeightedReward, per_sample
from rewardkit.types import RewardOutput, Sample


def samples(n=3):
    return [Sample(prompt="p", completion=f"c{i}", group=i // 2) for i in range(n)]


@per_sample
def length(sample):
    return float(len(sample.completion))


def test_weighted_sum_keeps_raw_rewards():
    def halves(batch):
        return [0.5] * len(batch)

    scorer = Scorer([WeightedReward("len", length, 2.0), WeightedReward("half", halves, -1.0)])
    result = scorer(samples())
    # each completion is "c<i>": length 2 -> 2*2 - 1*0.5 = 3.5
    assert result.total.tolist() == [3.5, 3.5, 3.5]
    assert result.raw == {"len": [2.0, 2.0, 2.0], "half": [0.5, 0.5, 0.5]}
    assert result.metrics()["reward/len/mean"] == 2.0
    assert [o.score for o in result.outputs] == [3.5, 3.5, 3.5]


def test_async_rewards_run_concurrently():
    async def slow(batch):
        await asyncio.sleep(0.3)
        return [1.0] * len(batch)

    class SlowToo:
        async def __call__(self, batch):
            await asyncio.sleep(0.3)
            return [2.0] * len(batch)

    scorer = Scorer([WeightedReward("a", slow), WeightedReward("b", SlowToo())])
    start = time.perf_counter()
    result = scorer(samples())
    elapsed = time.perf_counter() - start
    assert result.total.tolist() == [3.0, 3.0, 3.0]
    assert elapsed < 0.55, "two 0.3 s rewards awaited one after the other"


def test_timeout_raises_naming_the_reward():
    async def hangs(batch):
        await asyncio.sleep(10)

    with pytest.raises(RewardError, match="'hang' timed out after 0.1s"):
        Scorer([WeightedReward("hang", hangs)], timeout=0.1)(samples())


def test_sync_timeout_and_zero_policy_counts_errors():
    def slow(batch):
        time.sleep(0.5)
        return [1.0] * len(batch)

    scorer = Scorer(
        [WeightedReward("slow", slow, timeout=0.05), WeightedReward("len", length)],
        on_error="zero",
    )
    result = scorer(samples(2))
    assert result.raw["slow"] == [0.0, 0.0]
    assert result.total.tolist() == [2.0, 2.0]
    assert result.errors == {"slow": 2}
    assert scorer.error_counts["slow"] == 1
    assert "timed out" in result.outputs[0].info["slow"]["error"]


def test_exception_raises_by_default():
    def broken(batch):
        raise KeyError("answer")

    with pytest.raises(RewardError, match="'broken' failed: KeyError"):
        Scorer([WeightedReward("broken", broken)])(samples())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_an_error_even_with_zero_policy(bad):
    def nan_on_second(batch):
        return [1.0, bad, 1.0]

    with pytest.raises(RewardError, match=r"'nan_on_second' returned .* for sample 1 \(group 0"):
        Scorer([WeightedReward("nan_on_second", nan_on_second)], on_error="zero")(samples())


def test_wrong_number_of_outputs():
    with pytest.raises(RewardError, match=r"one value per sample \(3\), got 2"):
        Scorer([WeightedReward("short", lambda b: [1.0, 2.0])])(samples())


def test_wrong_type_of_output():
    with pytest.raises(RewardError, match="RewardOutput or a number, got str"):
        Scorer([WeightedReward("text", lambda b: ["yes"] * len(b))])(samples())


def test_token_and_step_rewards_are_weighted_and_summed():
    s = [Sample(prompt="p", completion="ab", completion_ids=[1, 2])]

    def tok(batch):
        return [RewardOutput(1.0, token_rewards=[0.5, 1.0], step_rewards=[1.0], step_ends=[1])]

    def tok2(batch):
        return [RewardOutput(0.0, token_rewards=[1.0, 0.0], step_rewards=[2.0], step_ends=[1])]

    out = Scorer([WeightedReward("a", tok, 2.0), WeightedReward("b", tok2, 1.0)])(s).outputs[0]
    assert out.token_rewards == [2.0, 2.0]  # 2*[0.5, 1] + [1, 0]
    assert out.step_rewards == [4.0]  # 2*1 + 2
    assert out.score == 2.0


def test_configuration_errors():
    with pytest.raises(ValueError, match="at least one reward"):
        Scorer([])
    with pytest.raises(ValueError, match="unique"):
        Scorer([WeightedReward("a", length), WeightedReward("a", length)])
    with pytest.raises(ValueError, match="on_error"):
        Scorer([WeightedReward("a", length)], on_error="ignore")


def test_scorer_works_inside_a_running_event_loop():
    async def main():
        return Scorer([WeightedReward("len", length)])(samples(1))

    assert asyncio.run(main()).total.tolist() == [2.0]


def test_reward_stats_become_metrics():
    class Judge:
        def __init__(self):
            self.calls = 0

        def __call__(self, batch):
            self.calls += 1
            return [1.0] * len(batch)

        def stats(self):
            return {"calls": self.calls, "label": "not a number"}

    scorer = Scorer([WeightedReward("judge", Judge())])
    scorer(samples())
    scorer(samples())
    assert scorer.reward_stats() == {"reward/judge/calls": 2.0}
