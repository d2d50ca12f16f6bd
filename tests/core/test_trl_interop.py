"""rewardkit rewards as TRL GRPOTrainer reward functions (rewardkit.interop)."""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest
import torch

from rewardkit.interop import as_trl_reward_func, samples_from_trl
from rewardkit.registry import RegistryError
from rewardkit.rewards import per_sample
from rewardkit.rewards.scoring import RewardError
from rewardkit.tasks.arith import exact_answer
from rewardkit.types import RewardOutput


class Recorder:
    """A batch reward that keeps the samples it was given and scores len(completion)."""

    name = "test.recorder"

    def __init__(self):
        self.batches = []

    def __call__(self, samples):
        self.batches.append(samples)
        return [float(len(s.completion)) for s in samples]


# ---------------------------------------------------------------- kwargs -> Sample


def test_dataset_columns_become_meta_and_trl_kwargs_do_not():
    reward = Recorder()
    func = as_trl_reward_func(reward)
    scores = func(
        prompts=["1+1=", "1+1=", "2+3=", "2+3="],
        completions=["2", "11", "5", "  5"],
        completion_ids=[[6], [5, 5], [9], [98, 98, 9]],
        answer=["2", "2", "5", "5"],
        level=[1, 1, 2, 2],
        trainer_state=object(),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: None,
    )
    assert scores == [1.0, 2.0, 1.0, 3.0]  # len("2"), len("11"), len("5"), len("  5")
    samples = reward.batches[0]
    assert [s.meta for s in samples] == [
        {"answer": "2", "level": 1},
        {"answer": "2", "level": 1},
        {"answer": "5", "level": 2},
        {"answer": "5", "level": 2},
    ]
    assert [s.completion_ids for s in samples] == [[6], [5, 5], [9], [98, 98, 9]]
    assert [s.completion_mask for s in samples] == [[1], [1, 1], [1], [1, 1, 1]]
    assert [s.group for s in samples] == [0, 0, 1, 1]  # runs of equal prompts
    assert [s.prompt for s in samples] == ["1+1=", "1+1=", "2+3=", "2+3="]


def test_num_generations_sets_groups_even_for_repeated_prompts():
    reward = Recorder()
    as_trl_reward_func(reward, num_generations=2)(prompts=["a"] * 4, completions=["x"] * 4)
    assert [s.group for s in reward.batches[0]] == [0, 0, 1, 1]
    as_trl_reward_func(reward)(prompts=["a"] * 4, completions=["x"] * 4)
    assert [s.group for s in reward.batches[1]] == [0, 0, 0, 0]
    assert reward.batches[1][0].completion_ids == []  # TRL passed none


def test_conversational_completions_use_the_last_assistant_message():
    reward = Recorder()
    prompt = [{"role": "user", "content": "2+3="}]
    completions = [
        [{"role": "assistant", "content": "5"}],
        [  # a tool call, its result, then the answer
            {"role": "assistant", "content": None, "tool_calls": [{"name": "calc"}]},
            {"role": "tool", "content": "5"},
            {"role": "assistant", "content": "it is 5"},
        ],
        [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "5"}, {"type": "text", "text": "0"}],
            }
        ],
    ]
    scores = as_trl_reward_func(reward)(prompts=[prompt] * 3, completions=completions)
    assert [s.completion for s in reward.batches[0]] == ["5", "it is 5", "50"]
    assert scores == [1.0, 7.0, 2.0]
    assert reward.batches[0][0].prompt == prompt
    with pytest.raises(ValueError, match="completion 0 is a list of messages with no assistant"):
        as_trl_reward_func(reward)(
            prompts=[prompt], completions=[[{"role": "tool", "content": "5"}]]
        )
    with pytest.raises(TypeError, match="completion 1 must be a string or a list of chat messages"):
        as_trl_reward_func(reward)(prompts=["a", "a"], completions=["x", 7])


def test_exact_answer_through_trl_arguments():
    func = as_trl_reward_func(exact_answer)
    assert func.__name__ == "core.exact_answer"  # TRL logs rewards/core.exact_answer/mean
    assert as_trl_reward_func(exact_answer, name="acc").__name__ == "acc"
    by_name = as_trl_reward_func("core.exact_answer")  # from the registry
    assert by_name.__name__ == "core.exact_answer" and by_name.reward is exact_answer
    assert by_name(prompts=["1+1="], completions=["2"], answer=["2"]) == [1.0]
    extra, metrics = {}, {}
    scores = func(
        prompts=["5+7=", "3+4=", "1+2="],
        completions=["12", "x 7", "13abc"],
        answer=["12", "7", "3"],
        log_extra=lambda column, values: extra.update({column: values}),
        log_metric=lambda name, value: metrics.update({name: value}),
    )
    # first number in the completion vs the answer: "12"=="12", "7"=="7", "13"!="3"
    assert scores == [1.0, 1.0, 0.0]
    assert extra == {"core.exact_answer/predicted": ["12", "7", "13"]}
    assert metrics == {}  # "predicted" is not a number
    with pytest.raises(KeyError, match="needs the dataset row to have an 'answer'"):
        func(prompts=["1+1="], completions=["2"])


def test_numeric_info_is_logged_as_batch_mean():
    def scored(samples):
        return [
            RewardOutput(1.0, info={"tests_passed": 3}),
            RewardOutput(0.0, info={"tests_passed": 0}),
        ]

    metrics = {}
    func = as_trl_reward_func(scored)
    assert func.__name__ == "scored"
    func(prompts=["p", "p"], completions=["a", "b"], log_metric=lambda n, v: metrics.update({n: v}))
    assert metrics == {"scored/tests_passed": 1.5}  # (3 + 0) / 2


# ---------------------------------------------------------------- async rewards


def test_async_batch_reward_becomes_an_async_function():
    class AsyncLength:
        async def __call__(self, samples):
            await asyncio.sleep(0)
            return [RewardOutput(float(len(s.completion))) for s in samples]

    func = as_trl_reward_func(AsyncLength())
    assert inspect.iscoroutinefunction(func)  # TRL awaits it with its other async rewards
    assert func.__name__ == "AsyncLength"
    assert asyncio.run(func(prompts=["p", "p"], completions=["ab", "abc"])) == [2.0, 3.0]


def test_async_per_sample_reward():
    @per_sample(name="test.async_len")
    async def async_len(sample):
        await asyncio.sleep(0)
        return len(sample.completion) * 0.5

    func = as_trl_reward_func(async_len)
    assert inspect.iscoroutinefunction(func)
    assert func.__name__ == "test.async_len"
    assert asyncio.run(func(prompts=["p"] * 2, completions=["ab", "abcd"])) == [1.0, 2.0]


def test_sync_call_returning_a_coroutine_is_awaited_even_inside_a_running_loop():
    async def scores(samples):
        return [1.5 for _ in samples]

    def sync_call(samples):  # looks sync, returns a coroutine
        return scores(samples)

    func = as_trl_reward_func(sync_call)
    assert not inspect.iscoroutinefunction(func)
    assert func(prompts=["p"], completions=["x"]) == [1.5]

    async def inside_a_loop():
        return func(prompts=["p"], completions=["x"])

    assert asyncio.run(inside_a_loop()) == [1.5]


# ---------------------------------------------------------------- bad input


def test_nan_score_is_an_error_naming_reward_and_sample():
    func = as_trl_reward_func(lambda samples: [1.0, math.nan], name="flaky")
    with pytest.raises(
        RewardError, match=r"reward 'flaky' returned nan for sample 1 \(group 0, completion 'b'\)"
    ):
        func(prompts=["p", "p"], completions=["a", "b"])
    inf = as_trl_reward_func(lambda samples: [RewardOutput(math.inf)], name="big")
    with pytest.raises(RewardError, match="reward 'big' returned inf for sample 0"):
        inf(prompts=["p"], completions=["a"])


def test_wrong_outputs_are_errors():
    short = as_trl_reward_func(lambda samples: [1.0], name="short")
    with pytest.raises(
        RewardError, match=r"reward 'short' must return one value per sample \(2\), got 1"
    ):
        short(prompts=["p", "p"], completions=["a", "b"])
    none = as_trl_reward_func(lambda samples: [None], name="none")
    with pytest.raises(
        RewardError, match="reward 'none', sample 0: a reward must return a RewardOutput"
    ):
        none(prompts=["p"], completions=["a"])


def test_bad_arguments_are_named():
    with pytest.raises(
        ValueError, match=r"dataset column 'answer' must hold one value per completion \(2\), got 1"
    ):
        samples_from_trl(["p", "p"], ["a", "b"], answer=["1"])
    with pytest.raises(ValueError, match="got 2 prompts but 1 completions"):
        samples_from_trl(["p", "p"], ["a"])
    with pytest.raises(ValueError, match="got 1 completions but 2 completion_ids"):
        samples_from_trl(["p"], ["a"], [[1], [2]])
    with pytest.raises(TypeError, match="reward must be a rewardkit Reward or a registered name"):
        as_trl_reward_func(3.0)
    with pytest.raises(
        RegistryError, match="unknown reward 'core.exact_anwser'.*core.exact_answer"
    ):
        as_trl_reward_func("core.exact_anwser")
    with pytest.raises(ValueError, match="options apply only to a reward given by its registry"):
        as_trl_reward_func(exact_answer, options={"x": 1})
    with pytest.raises(ValueError, match="num_generations must be a positive int"):
        as_trl_reward_func(exact_answer, num_generations=0)


# ---------------------------------------------------------------- a real TRL run


def test_trl_grpo_trainer_trains_with_exact_answer(tmp_path, monkeypatch):
    """Two real TRL GRPO steps on the tiny model with core.exact_answer as its reward.

    The tiny model's head is biased so it answers "1" or "2" (about half each): the prompts
    "1+0=" (answer 1) and "0+2=" (answer 2) then get rewards that vary within each group,
    the advantages are non-zero and the weights must move.
    """
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from rewardkit.tiny import build_tiny_model

    model, tokenizer = build_tiny_model(seed=0, num_layers=1, hidden_size=32, num_heads=2)
    head = torch.nn.Linear(32, len(tokenizer), bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight * 0.01)
        head.bias.fill_(-20.0)
        head.bias[tokenizer.convert_tokens_to_ids(["1", "2"])] = 20.0
    model.set_output_embeddings(head)

    scored = []  # (meta, completion, score) of every sample exact_answer scored
    original = exact_answer.fn

    def recording(sample):
        out = original(sample)
        scored.append((dict(sample.meta), sample.completion, out.score))
        return out

    monkeypatch.setattr(exact_answer, "fn", recording)

    train = datasets.Dataset.from_dict({"prompt": ["1+0=", "0+2="], "answer": ["1", "2"]})
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=8,
        num_generations=8,
        max_completion_length=1,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=as_trl_reward_func(exact_answer),
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    assert len(scored) == 16  # 2 steps x 1 prompt x 8 generations
    assert {s[0]["answer"] for s in scored} == {"1", "2"}  # meta came from the dataset column
    assert {s[1] for s in scored} <= {"1", "2"}
    assert {s[2] for s in scored} == {0.0, 1.0}
    logged = [
        row["rewards/core.exact_answer/mean"]
        for row in trainer.state.log_history
        if "rewards/core.exact_answer/mean" in row
    ]
    assert len(logged) == 2
    # each step's logged mean is the mean of the 8 scores exact_answer gave in that step
    assert logged == pytest.approx(
        [sum(s[2] for s in scored[k * 8 : (k + 1) * 8]) / 8 for k in (0, 1)]
    )
    changed = [
        n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])
    ]
    assert "lm_head.weight" in changed, changed
