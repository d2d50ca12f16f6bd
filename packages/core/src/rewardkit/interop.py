"""rewardkit rewards in other trainers: TRL, verl and OpenRLHF.

Each example below runs as it is (`tests/core/test_verl_interop.py` runs them as doctests).

**TRL** (`GRPOTrainer(reward_funcs=[...])`): `as_trl_reward_func(reward)` is a TRL reward
function; dataset columns other than "prompt" reach the reward as `Sample.meta`.

>>> from rewardkit.interop import as_trl_reward_func
>>> exact = as_trl_reward_func("core.exact_answer")
>>> exact(prompts=["1+1=", "1+1="], completions=["2", "3"], answer=["2", "2"])
[1.0, 0.0]

Pass it as `trl.GRPOTrainer(model, reward_funcs=[exact], train_dataset=ds)` where `ds` has
"prompt" and "answer" columns.

**verl** (`custom_reward_function`): `compute_score(data_source, solution_str, ground_truth,
extra_info)` for verl's naive reward manager, `compute_score_batch(data_sources,
solution_strs, ground_truths, extra_infos)` for its batch manager (one call per batch:
group statistics and batched sandbox runs). A string ground truth becomes
`meta[answer_key]` (default "answer"), a dict ground truth and `extra_info` are merged into
`meta`. The rewards: `rewards` (from `reward_kwargs`) as "a,b:0.1", or a mapping from data
source to such a set; else the data source itself, when it names a registered reward or a
task (the task's default rewards and weights).

>>> from rewardkit.interop import compute_score, compute_score_batch
>>> compute_score("core.arith", "4", "4")  # 1 * exact answer + 0.1 * number format
1.1
>>> compute_score("openai/gsm8k", "It is 4.", "4", rewards="core.exact_answer")
1.0
>>> compute_score_batch(["core.arith"] * 2, ["4", "5 apples"], ["4", "5"], [{}, {}],
...                     return_dict=True)  # doctest: +NORMALIZE_WHITESPACE
[{'score': 1.1, 'core.exact_answer': 1.0, 'core.number_format': 1.0},
 {'score': 1.0, 'core.exact_answer': 1.0, 'core.number_format': 0.0}]

In verl's config: `custom_reward_function.path=my_reward.py` (a file holding `from
rewardkit.interop import compute_score`), `custom_reward_function.name=compute_score`,
and `+custom_reward_function.reward_kwargs.rewards=math.accuracy` if the data source is
not a rewardkit name (`compute_score_batch` with `reward_model.reward_manager=batch`).

**OpenRLHF** (remote reward model): run `rewardkit serve --task core.arith --port 5000` and
train with `--remote_rm_url http://HOST:5000/get_reward`. In-process, for a test:

>>> import requests
>>> from rewardkit.external import build_reward_set, parse_reward_set
>>> from rewardkit.serve import create_app, running_server
>>> app = create_app(build_reward_set(parse_reward_set("core.exact_answer,core.number_format:0.1")))
>>> with running_server(app) as url:
...     reply = requests.post(f"{url}/get_reward", json={
...         "query": ["1+1=2", "1+1=3"], "prompts": ["1+1=", "1+1="], "labels": ["2", "2"]})
>>> reply.json()["rewards"]
[1.1, 0.1]

**TRL in detail.** TRL (checked against trl 1.16, `GRPOTrainer._calculate_rewards`) calls each reward function as

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

import functools
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewardkit.external import (
    cached_scorer,
    groups_of,
    jsonable,
    parse_reward_set,
    task_reward_specs,
)
from rewardkit.registry import REWARDS, TASKS
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


# ---------------------------------------------------------------- verl


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    rewards: str | Sequence[str] | Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    answer_key: str = "answer",
    timeout: float | None = 60.0,
    return_dict: bool = False,
) -> float | dict[str, float]:
    """verl's `compute_score`: the weighted score of one response (see the module doc).

    `options[name]` are a reward's constructor options; `return_dict` gives
    `{"score": total, <reward>: score, ...}`, which verl logs as reward_extra_info.
    """
    (result,) = compute_score_batch(
        [data_source], [solution_str], [ground_truth], [extra_info], rewards=rewards,
        options=options, answer_key=answer_key, timeout=timeout, return_dict=return_dict,
    )  # fmt: skip
    return result


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    rewards: str | Sequence[str] | Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    answer_key: str = "answer",
    timeout: float | None = 60.0,
    return_dict: bool = False,
) -> list[float] | list[dict[str, float]]:
    """verl's batch `compute_score`: one score (or dict) per response, in order. Responses
    of one data source are scored as one batch; runs of equal ground truths share a group."""
    sources, responses, truths = list(data_sources), list(solution_strs), list(ground_truths)
    infos = [None] * len(responses) if extra_infos is None else list(extra_infos)
    if not len(sources) == len(responses) == len(truths) == len(infos):
        raise ValueError(
            f"got {len(sources)} data_sources, {len(responses)} solution_strs, "
            f"{len(truths)} ground_truths and {len(infos)} extra_infos"
        )
    metas = [_verl_meta(truth, info, answer_key) for truth, info in zip(truths, infos)]
    groups = groups_of([repr(sorted(m.items(), key=str)) for m in metas])
    results: list[Any] = [None] * len(responses)
    by_source: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(str(source), []).append(i)
    for source, idx in by_source.items():
        scorer = cached_scorer(_verl_reward_set(source, rewards), options, timeout)
        prompts = [metas[i].get("prompt", "") for i in idx]
        samples = [
            Sample(prompt=p if isinstance(p, str) else str(p), completion=str(responses[i]),
                   group=groups[i], meta=metas[i])
            for p, i in zip(prompts, idx)
        ]  # fmt: skip
        scored = scorer(samples)
        for k, i in enumerate(idx):
            total = scored.outputs[k].score
            raw = {name: values[k] for name, values in scored.raw.items()}
            results[i] = {"score": total, **raw} if return_dict else total
    return results


def _verl_reward_set(source: str, rewards: Any) -> list:
    return _resolve_reward_set(source, json.dumps(rewards, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _resolve_reward_set(source: str, rewards_json: str) -> list:
    """The reward specs for a data source (cached: a task builds its dataset to say)."""
    rewards = json.loads(rewards_json)
    if isinstance(rewards, Mapping) and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in rewards.values()
    ):
        rewards = rewards.get(source)  # a reward set per data source
    if rewards is not None:
        return parse_reward_set(rewards)
    if source in REWARDS.names():
        return parse_reward_set(source)
    if source in TASKS.names():
        return task_reward_specs(source)
    raise ValueError(
        f"no rewardkit reward for data_source {source!r}: it names no registered reward or "
        f"task; pass rewards (verl: custom_reward_function.reward_kwargs.rewards)"
    )


def _verl_meta(ground_truth: Any, extra_info: Any, answer_key: str) -> dict[str, Any]:
    if extra_info is not None and not isinstance(extra_info, Mapping):
        raise TypeError(f"extra_info must be a dict or None, got {type(extra_info).__name__}")
    meta = jsonable(dict(extra_info or {}))  # numpy values from parquet become Python ones
    truth = jsonable(ground_truth)
    if isinstance(truth, dict):
        meta.update(truth)
    elif truth is not None:
        meta[answer_key] = truth
    return meta


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
