"""The reward contract: a callable that scores a batch of samples.

Batch-level so that a reward can use group statistics (VeRPO's test weights, exemplar
comparisons). `async def __call__` is allowed; the scorer awaits async rewards together.
Rewards as small composable functions (the `verifiers` rubric idea): lift a per-sample
function with `@per_sample` and combine several with weights in the scorer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from rewardkit.types import RewardOutput, Sample

RewardValue = RewardOutput | float


@runtime_checkable
class Reward(Protocol):
    """Scores a batch: returns one RewardOutput (or float) per sample, in order."""

    def __call__(
        self, samples: list[Sample]
    ) -> list[RewardValue] | Awaitable[list[RewardValue]]: ...


class SampleReward:
    """A batch reward made from a function of one sample (see `per_sample`)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **kwargs: Any):
        self.fn = fn
        self.name = name or fn.__name__
        self.kwargs = kwargs
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_context = "context" in inspect.signature(fn).parameters
        functools.update_wrapper(self, fn)

    def __call__(self, samples: list[Sample], context: Any = None):
        kwargs = {**self.kwargs, "context": context} if self.takes_context else self.kwargs
        if self.is_async:
            return self._acall(samples, kwargs)
        return [self.fn(s, **kwargs) for s in samples]

    async def _acall(self, samples: list[Sample], kwargs: dict[str, Any]):
        import asyncio

        return list(await asyncio.gather(*(self.fn(s, **kwargs) for s in samples)))

    def with_options(self, **kwargs: Any) -> SampleReward:
        """A copy with keyword arguments bound (used when a config passes options)."""
        return SampleReward(self.fn, self.name, **{**self.kwargs, **kwargs})


def per_sample(fn: Callable[..., Any] | None = None, *, name: str | None = None):
    """Lift `fn(sample, **options) -> RewardOutput | float` to a batch `Reward`.

    Usable bare (`@per_sample`) or with a name (`@per_sample(name="format")`). A function
    with a `context` parameter gets the trainer's `RewardContext` (step, phase).
    """
    if fn is None:
        return lambda f: SampleReward(f, name)
    return SampleReward(fn, name)


def build_reward(obj: Any, **options: Any) -> Reward:
    """Turn a registry entry into a ready reward: classes are instantiated with the
    options, lifted functions get them bound, plain callables are used as they are."""
    if isinstance(obj, type):
        return obj(**options)
    if isinstance(obj, SampleReward):
        return obj.with_options(**options) if options else obj
    if callable(obj):
        if options:
            raise TypeError(
                f"reward {getattr(obj, '__name__', obj)!r} takes no options, got {sorted(options)}"
            )
        return obj
    raise TypeError(f"{obj!r} is not a reward (expected a class or a callable)")
