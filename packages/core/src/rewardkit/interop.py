"""Use rewardkit rewards as reward functions of TRL's `GRPOTrainer`.

TRL (checked against trl 1.16, `GRPOTrainer._calculate_rewards`) calls each reward function as

    reward_func(prompts=..., completions=..., completion_ids=..., **kwargs) -> list[float]

with one entry per completion (each prompt repeated `num_generations` times, next to each
other), where `kwargs` holds every dataset column but "prompt"/"completion"/"completion_ids"
(one value per completion) plus TRL's own `trainer_state`, `log_extra`, `log_metric` and, with
environments, `environments`. Prompts and completions are strings, or lists of chat messages
for a conversational dataset. It logs each function under its `__name__`
(`rewards/<name>/mean` in `trainer.state.log_history`) and awaits `async def` functions together.

`as_trl_reward_func` turns a rewardkit `Reward` (a batch callable, sync or async, or a
`@per_sample` function; returning `RewardOutput`s or numbers) into such a function: each call
becomes one batch of `Sample`s whose `meta` is the dataset row, the reward's scores come back
as floats, numeric `RewardOutput.info` values go to `log_metric` (their batch mean) and scalar
ones to `log_extra` (the completions table). A NaN or infinite score is an error, as in
rewardkit's `Scorer` (TRL itself would read NaN as "this reward does not apply").
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from rewardkit.registry import REWARDS
from rewardkit.rewards.base import Reward, build_reward
from rewardkit.rewards.calling import check_outputs, is_async, run_sync
from rewardkit.types import Prompt, RewardOutput, Sample

# keyword arguments TRL adds for its own purposes; everything else it passes is a dataset column
TRL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


def as_trl_reward_func(
    reward: Reward | str,
    name: str | None = None,
    *,
    num_generations: int | None = None,
    options: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """A TRL `GRPOTrainer` reward function `(prompts, completions, **kwargs) -> list[float]`
    that scores with `reward`.

    `reward` is a rewardkit reward, or the name of one in the "rewardkit.rewards" registry
    (built with `options`, as a run config would).

    `name` (default: the reward's `name`, else its `__name__`, else its class name) becomes the
    function's `__name__`, under which TRL logs it. `Sample.group` is `i // num_generations` when
    `num_generations` is given, otherwise runs of equal prompts (TRL's sampler puts the
    completions of one prompt next to each other). An async reward gives an `async def`
    function, which TRL awaits concurrently with its other async rewards.
    """
    if isinstance(reward, str):
        registered = reward
        reward = build_reward(REWARDS.get(registered), **(options or {}))
        name = name or registered
    elif options:
        raise ValueError("options apply only to a reward given by its registry name")
    if not callable(reward):
        raise TypeError(
            f"reward must be a rewardkit Reward or a registered name, got {type(reward).__name__}"
        )
    if num_generations is not None and (
        isinstance(num_generations, bool)
        or not isinstance(num_generations, int)
        or num_generations < 1
    ):
        raise ValueError(f"num_generations must be a positive int or None, got {num_generations!r}")
    name = name or _reward_name(reward)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    def prepare(prompts, completions, completion_ids, kwargs) -> tuple[list[Sample], dict]:
        columns = {k: v for k, v in kwargs.items() if k not in TRL_KWARGS}
        samples = samples_from_trl(prompts, completions, completion_ids, num_generations, **columns)
        return samples, kwargs

    def finish(values: Any, samples: list[Sample], kwargs: dict) -> list[float]:
        outputs = check_outputs(values, samples, f"reward {name!r}")
        _log_info(name, outputs, kwargs.get("log_metric"), kwargs.get("log_extra"))
        return [o.score for o in outputs]

    if is_async(reward):

        async def trl_reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            samples, kwargs = prepare(prompts, completions, completion_ids, kwargs)
            values = reward(samples)
            if inspect.isawaitable(values):
                values = await values
            return finish(values, samples, kwargs)

    else:

        def trl_reward(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
            samples, kwargs = prepare(prompts, completions, completion_ids, kwargs)
            values = reward(samples)
            if inspect.isawaitable(values):  # a sync __call__ that returned a coroutine
                values = run_sync(values)
            return finish(values, samples, kwargs)

    trl_reward.__name__ = trl_reward.__qualname__ = name
    trl_reward.__doc__ = f"TRL reward function scoring with the rewardkit reward {name!r}."
    trl_reward.reward = reward  # the wrapped rewardkit reward
    return trl_reward


def samples_from_trl(
    prompts: Sequence[Prompt],
    completions: Sequence[str | list[dict[str, Any]]],
    completion_ids: Sequence[Sequence[int]] | None = None,
    num_generations: int | None = None,
    **columns: Sequence[Any],
) -> list[Sample]:
    """One `Sample` per completion from the arguments TRL passes a reward function.

    A conversational completion (a list of messages) gives the text of its last assistant
    message (the final answer after any tool calls); `columns` are the dataset columns, one
    value per completion, and become `Sample.meta`.
    """
    n = len(prompts)
    if len(completions) != n:
        raise ValueError(f"got {n} prompts but {len(completions)} completions")
    if completion_ids is not None and len(completion_ids) != n:
        raise ValueError(f"got {n} completions but {len(completion_ids)} completion_ids")
    for column, values in columns.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) != n:
            got = len(values) if isinstance(values, Sequence) else type(values).__name__
            raise ValueError(
                f"dataset column {column!r} must hold one value per completion ({n}), got {got}"
            )
    groups = _groups(prompts, num_generations)
    samples = []
    for i in range(n):
        ids = [] if completion_ids is None else [int(t) for t in completion_ids[i]]
        samples.append(
            Sample(
                prompt=prompts[i],
                completion=_completion_text(completions[i], i),
                completion_ids=ids,
                group=groups[i],
                meta={column: values[i] for column, values in columns.items()},
            )
        )
    return samples


# ---------------------------------------------------------------- helpers


def _reward_name(reward: Any) -> str:
    name = getattr(reward, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(reward, "__name__", None) or type(reward).__name__


def _groups(prompts: Sequence[Prompt], num_generations: int | None) -> list[int]:
    if num_generations is not None:
        return [i // num_generations for i in range(len(prompts))]
    groups: list[int] = []
    for i, prompt in enumerate(prompts):
        same = i > 0 and prompt == prompts[i - 1]
        groups.append(groups[-1] if same else (groups[-1] + 1 if groups else 0))
    return groups


def _completion_text(completion: Any, index: int) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) for m in completion):
        replies = [m for m in completion if m.get("role") == "assistant"]
        if not replies:
            raise ValueError(f"completion {index} is a list of messages with no assistant message")
        return _content_text(replies[-1].get("content"), index)
    raise TypeError(
        f"completion {index} must be a string or a list of chat messages, "
        f"got {type(completion).__name__}"
    )


def _content_text(content: Any, index: int) -> str:
    """Message content: a string, None (a pure tool call), or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError(f"completion {index}: message content of type {type(content).__name__}")


def _log_info(name: str, outputs: list[RewardOutput], log_metric, log_extra) -> None:
    """Batch means of numeric info values to TRL's metrics, scalar values to its table."""
    keys = sorted({k for o in outputs for k in o.info})
    for key in keys:
        values = [o.info.get(key) for o in outputs]
        numbers = [
            float(v)
            for v in values
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if callable(log_metric) and numbers:
            log_metric(f"{name}/{key}", sum(numbers) / len(numbers))
        if callable(log_extra) and all(
            isinstance(v, str | int | float | bool | None) for v in values
        ):
            log_extra(f"{name}/{key}", values)
