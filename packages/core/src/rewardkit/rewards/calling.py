"""Calling a reward: the plumbing every caller shares (the scorer, transforms that wrap
rewards, the TRL adapter), in one place.

- `run_sync(awaitable)`: wait for async work from sync code, also inside a running event
  loop (then in a thread of its own);
- `is_async(reward)`: whether calling the reward gives a coroutine;
- `check_outputs(values, samples, who)`: one finite `RewardOutput` per sample, or a
  `RewardError` that names the reward, the sample and what was wrong.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from typing import Any

from rewardkit.types import RewardOutput, Sample


class RewardError(RuntimeError):
    """A reward failed, timed out or returned something unusable."""


class NonFiniteReward(RewardError):
    """A NaN or infinite score: a bug to fix, never zeroed by on_error."""


def run_sync(awaitable: Any) -> Any:
    """Wait for a coroutine (or any awaitable) from sync code, also when an event loop is
    already running in this thread (then in a thread of its own)."""
    if inspect.iscoroutine(awaitable):
        coro = awaitable
    else:

        async def wait() -> Any:
            return await awaitable

        coro = wait()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="rewardkit-run-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def is_async(reward: Any) -> bool:
    return (
        inspect.iscoroutinefunction(reward)
        or inspect.iscoroutinefunction(type(reward).__call__)  # async def __call__
        or bool(getattr(reward, "is_async", False))  # a @per_sample async function
    )


def check_outputs(values: Any, samples: list[Sample], who: str) -> list[RewardOutput]:
    """One finite RewardOutput per sample (numbers are coerced); `who` names the reward in
    the error ("reward 'x'", "par: wrapped reward 'x'")."""
    if not isinstance(values, list | tuple) or len(values) != len(samples):
        got = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise RewardError(f"{who} must return one value per sample ({len(samples)}), got {got}")
    outputs = []
    for i, value in enumerate(values):
        try:
            output = RewardOutput.coerce(value)
        except TypeError as exc:
            raise RewardError(f"{who}, sample {i}: {exc}") from None
        if not math.isfinite(output.score):
            s = samples[i]
            raise NonFiniteReward(
                f"{who} returned {output.score} for sample {i} "
                f"(group {s.group}, completion {s.completion[:80]!r})"
            )
        outputs.append(output)
    return outputs
