"""Scoring engine: run several rewards over one batch and combine them.

Async rewards are awaited together; sync rewards run in a thread pool, concurrently with
them. Each reward has a timeout. The combined score is the weighted sum of the rewards'
scores, and every raw reward is kept by name for logging. A NaN or infinite score is an
error naming the reward and the sample. With `on_error="zero"` a failing or timed-out
reward scores 0 for the whole batch and the failure is counted.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from rewardkit.rewards.base import Reward
from rewardkit.rewards.calling import (
    NonFiniteReward,
    RewardError,
    check_outputs,
    is_async,
    run_sync,
)
from rewardkit.rewards.lifecycle import RewardContext, invoke
from rewardkit.types import RewardOutput, Sample


@dataclass
class WeightedReward:
    name: str
    reward: Reward
    weight: float = 1.0
    timeout: float | None = None  # seconds; None = the scorer's default


@dataclass
class ScoreResult:
    total: torch.Tensor  # (B,) weighted sum
    raw: dict[str, list[float]]  # reward name -> per-sample score
    outputs: list[RewardOutput]  # merged per-sample outputs (score = total)
    errors: dict[str, int] = field(default_factory=dict)  # reward name -> failures zeroed
    per_reward: dict[str, list[RewardOutput]] = field(default_factory=dict)  # name -> outputs

    def select(self, idx: list[int]) -> ScoreResult:
        """The results of the samples at `idx` (a group filter keeps some groups)."""
        raw = {name: [values[i] for i in idx] for name, values in self.raw.items()}
        per_reward = {name: [out[i] for i in idx] for name, out in self.per_reward.items()}
        return ScoreResult(self.total[idx], raw, [self.outputs[i] for i in idx], {}, per_reward)

    @staticmethod
    def concat(results: list[ScoreResult]) -> ScoreResult:
        raw = {name: [v for r in results for v in r.raw[name]] for name in results[0].raw}
        per_reward = {
            name: [o for r in results for o in r.per_reward[name]] for name in results[0].per_reward
        }
        outputs = [o for r in results for o in r.outputs]
        errors: dict[str, int] = {}
        for r in results:
            for name, n in r.errors.items():
                errors[name] = errors.get(name, 0) + n
        total = torch.cat([r.total for r in results])
        return ScoreResult(total, raw, outputs, errors, per_reward)

    def metrics(self) -> dict[str, float]:
        """Mean and std of each raw reward and of the total, plus error counts."""
        out: dict[str, float] = {}
        for name, values in {**self.raw, "total": self.total.tolist()}.items():
            t = torch.tensor(values, dtype=torch.float)
            out[f"reward/{name}/mean"] = t.mean().item() if len(t) else 0.0
            out[f"reward/{name}/std"] = t.std(unbiased=False).item() if len(t) else 0.0
        for name, n in self.errors.items():
            out[f"reward/{name}/errors"] = float(n)
        return out


class Scorer:
    """Scores batches with a fixed list of weighted rewards."""

    def __init__(
        self,
        rewards: list[WeightedReward],
        timeout: float | None = 60.0,
        on_error: Literal["raise", "zero"] = "raise",
        max_workers: int = 8,
    ):
        if not rewards:
            raise ValueError("the scorer needs at least one reward")
        names = [r.name for r in rewards]
        if len(set(names)) != len(names):
            raise ValueError(f"reward names must be unique, got {names}")
        if on_error not in ("raise", "zero"):
            raise ValueError(f"on_error must be 'raise' or 'zero', got {on_error!r}")
        self.rewards = rewards
        self.timeout = timeout
        self.on_error = on_error
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self.thread_name = f"reward-{next(_SCORERS)}"  # this scorer's threads
        self.error_counts: dict[str, int] = {r.name: 0 for r in rewards}  # over the run

    def __call__(self, samples: list[Sample], context: RewardContext | None = None) -> ScoreResult:
        """Score `samples` with every reward; rewards that take a `context` get this one."""
        return self._score(samples, self.rewards, context)

    def rescore(
        self,
        samples: list[Sample],
        scored: ScoreResult,
        names: set[str],
        context: RewardContext | None = None,
    ) -> ScoreResult:
        """`scored` with the rewards in `names` scored again (after they learned)."""
        again = self._score(samples, [r for r in self.rewards if r.name in names], context)
        per_reward = {**scored.per_reward, **again.per_reward}
        errors = {**scored.errors, **again.errors}
        return self._total(samples, per_reward, errors)

    def _score(
        self, samples: list[Sample], rewards: list[WeightedReward], context: RewardContext | None
    ) -> ScoreResult:
        if any(is_async(r.reward) for r in rewards):
            return run_sync(self.score(samples, context, rewards))
        # all sync: the thread pool alone (an event loop per batch costs ~10 ms a step)
        futures = [self.pool.submit(invoke, r.reward, samples, context) for r in rewards]
        results: list[Any] = []
        for r, future in zip(rewards, futures, strict=True):
            timeout = self._timeout(r)
            try:
                values = future.result(timeout=timeout)
                if inspect.isawaitable(values):  # a sync __call__ that returned a coroutine
                    values = run_sync(asyncio.wait_for(values, timeout))
                results.append(self._check(r, samples, values))
            except TimeoutError:
                results.append(RewardError(f"reward {r.name!r} timed out after {timeout}s"))
            except Exception as exc:  # noqa: BLE001 - handled by on_error in _combine
                results.append(exc)
        return self._combine(samples, rewards, results)

    async def score(
        self,
        samples: list[Sample],
        context: RewardContext | None = None,
        rewards: list[WeightedReward] | None = None,
    ) -> ScoreResult:
        rewards = self.rewards if rewards is None else rewards
        results = await asyncio.gather(
            *(self._one(r, samples, context) for r in rewards), return_exceptions=True
        )
        return self._combine(samples, rewards, results)

    def _combine(
        self, samples: list[Sample], rewards: list[WeightedReward], results: list[Any]
    ) -> ScoreResult:
        """The rewards' outputs (or exceptions, handled by on_error), weighted and summed."""
        per_reward: dict[str, list[RewardOutput]] = {}
        errors: dict[str, int] = {}
        for r, res in zip(rewards, results, strict=True):
            if isinstance(res, BaseException):
                if self.on_error == "raise" or isinstance(res, NonFiniteReward):
                    raise (
                        res
                        if isinstance(res, RewardError)
                        else RewardError(f"reward {r.name!r} failed: {type(res).__name__}: {res}")
                    ) from res
                errors[r.name] = len(samples)
                self.error_counts[r.name] += 1
                res = [RewardOutput(0.0, info={"error": f"{type(res).__name__}: {res}"})] * len(
                    samples
                )
            per_reward[r.name] = res
        if len(rewards) < len(self.rewards):  # a rescore: the caller merges
            return ScoreResult(torch.zeros(0), {}, [], errors, per_reward)
        return self._total(samples, per_reward, errors)

    def _total(
        self,
        samples: list[Sample],
        per_reward: dict[str, list[RewardOutput]],
        errors: dict[str, int],
    ) -> ScoreResult:
        """Weighted sum of every reward's outputs, raw scores kept by name."""
        raw = {r.name: [o.score for o in per_reward[r.name]] for r in self.rewards}
        total = torch.zeros(len(samples), dtype=torch.float64)
        for r in self.rewards:
            total += r.weight * torch.tensor(raw[r.name], dtype=torch.float64)
        outputs = [
            _merge(i, samples[i], self.rewards, per_reward, float(total[i]))
            for i in range(len(samples))
        ]
        return ScoreResult(total.float(), raw, outputs, errors, per_reward)

    def _timeout(self, r: WeightedReward) -> float | None:
        return r.timeout if r.timeout is not None else self.timeout

    async def _one(
        self, r: WeightedReward, samples: list[Sample], context: RewardContext | None
    ) -> list[RewardOutput]:
        timeout = self._timeout(r)
        loop = asyncio.get_running_loop()
        if is_async(r.reward):
            coro = invoke(r.reward, samples, context)
        else:
            coro = loop.run_in_executor(self.pool, invoke, r.reward, samples, context)
        try:
            values = await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise RewardError(f"reward {r.name!r} timed out after {timeout}s") from None
        if inspect.isawaitable(values):  # a sync __call__ that returned a coroutine
            values = await asyncio.wait_for(values, timeout)
        return self._check(r, samples, values)

    def _check(self, r: WeightedReward, samples: list[Sample], values: Any) -> list[RewardOutput]:
        return check_outputs(values, samples, f"reward {r.name!r}")

    def reward_stats(self) -> dict[str, float]:
        """Counters that rewards keep over the run (a reward may define `stats()`, e.g. a
        judge's unparseable verdicts), as `reward/<name>/<counter>` metrics."""
        out: dict[str, float] = {}
        for r in self.rewards:
            stats = getattr(r.reward, "stats", None)
            if callable(stats):
                for key, value in (stats() or {}).items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        out[f"reward/{r.name}/{key}"] = float(value)
        return out

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads that run sync rewards: started on first use, again after `close`."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix=self.thread_name)
        return self._pool

    def close(self) -> None:
        """Stop the reward threads (a hung reward's thread is not waited for)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SCORERS = itertools.count()


def _merge(
    i: int,
    sample: Sample,
    rewards: list[WeightedReward],
    per_reward: dict[str, list[RewardOutput]],
    total: float,
) -> RewardOutput:
    """Weighted sum of token and step rewards across rewards; infos keyed by reward."""
    token: list[float] | None = None
    steps: list[float] | None = None
    ends: list[int] | None = None
    info: dict[str, Any] = {}
    for r in rewards:
        o = per_reward[r.name][i]
        if o.info:
            info[r.name] = o.info
        if o.token_rewards is not None:
            add = [r.weight * v for v in o.token_rewards]
            token = add if token is None else [a + b for a, b in zip(token, add, strict=True)]
        if o.step_rewards is not None:
            add = [r.weight * v for v in o.step_rewards]
            if steps is None:
                steps, ends = add, list(o.step_ends)
            elif list(o.step_ends) == ends:
                steps = [a + b for a, b in zip(steps, add, strict=True)]
            else:
                raise RewardError(
                    f"reward {r.name!r} gives step rewards with other step ends than another "
                    f"reward for sample {i}; step rewards can only be summed on the same steps"
                )
    return RewardOutput(total, token_rewards=token, step_rewards=steps, step_ends=ends, info=info)
