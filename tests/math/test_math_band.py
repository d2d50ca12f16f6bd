"""PRIME's accuracy band as a dataset-level filter (task option `accuracy_band`)."""

import pytest

from rewardkit.registry import TASKS
from rewardkit_math.band import band_accuracies, filter_by_accuracy

TINY = {"num_layers": 1, "hidden_size": 32, "num_heads": 2}


def test_filter_keeps_the_open_band():
    rows = [{"i": i} for i in range(5)]
    # accuracies 0, 0.25, 0.5, 0.8, 1.0 in (0.2, 0.8): 0.25 and 0.5 (0.8 is on the edge)
    kept = filter_by_accuracy(rows, [0.0, 0.25, 0.5, 0.8, 1.0], 0.2, 0.8)
    assert kept == [{"i": 1, "ref_accuracy": 0.25}, {"i": 2, "ref_accuracy": 0.5}]
    with pytest.raises(ValueError, match="kept none of 2 prompts.*\\[0.0, 1.0\\]"):
        filter_by_accuracy(rows[:2], [0.0, 1.0], 0.2, 0.8)
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        filter_by_accuracy(rows, [0.5] * 5, 0.8, 0.2)


def _sampler(right_per_prompt, calls=None):
    """A stand-in reference model: prompt i gets right_per_prompt[i] right answers of n."""

    def sample(prompts, n):
        if calls is not None:
            calls.append(len(prompts))
        out = []
        for i, p in enumerate(prompts):
            answer = p.split("|")[1] if "|" in p else None
            k = right_per_prompt[i % len(right_per_prompt)]
            out.append([f"\\boxed{{{answer}}}" if j < k else "\\boxed{-1}" for j in range(n)])
        return out

    return sample


def test_accuracies_from_samples_and_math_accuracy(accuracy):
    rows = [{"answer": "3"}, {"answer": "4"}]
    prompts = ["x|3", "y|4"]
    # 4 samples each: 1 and 3 right -> 1/4 and 3/4
    acc = band_accuracies(rows, prompts, _sampler([1, 3]), accuracy, 4)
    assert acc == [0.25, 0.75]
    with pytest.raises(ValueError, match="2 completions for each of 2 prompts"):
        band_accuracies(rows, prompts, lambda p, n: [["a"]] * len(p), accuracy, 2)
    with pytest.raises(ValueError, match="num_samples"):
        band_accuracies(rows, prompts, _sampler([1]), accuracy, 0)


def test_task_option_filters_train_only_and_once(accuracy):
    calls = []
    task = TASKS.get("math.gsm8k_jsonl")(
        dataset="gsm8k_tiny",
        instruction="",
        accuracy_band={
            "sampler": _sampler([0, 1, 2, 4], calls),
            "scorer": accuracy,
            "num_samples": 4,
        },
    )
    # prompts carry their answer after "|" for the stand-in sampler
    task.prompt = lambda row: f"{row['question']}|{row['answer']}"
    rows = task.rows("train")
    # right answers cycle 0, 1, 2, 4 of 4: accuracies 0, .25, .5, 1; the band keeps
    # .25 and .5, i.e. rows 1, 2, 5, 6, ... : 2 of every 4 of the 36 rows
    assert len(rows) == 18
    assert sorted({r["ref_accuracy"] for r in rows}) == [0.25, 0.5]
    assert task.rows("train") is rows and calls == [36]  # sampled once, then cached
    assert len(task.rows("test")) == 12 and "ref_accuracy" not in task.rows("test")[0]


def test_task_option_with_a_tiny_reference_model():
    # a random tiny model never writes a right boxed answer: nothing is inside the band
    task = TASKS.get("math.gsm8k_jsonl")(
        dataset="gsm8k_tiny",
        accuracy_band={"model": "tiny", "tiny_model": TINY, "num_samples": 2, "max_new_tokens": 4},
    )
    with pytest.raises(ValueError, match="kept none of 36 prompts.*\\[0.0\\]"):
        task.rows("train")


def test_task_option_bad_input():
    def make(band):
        return TASKS.get("math.gsm8k_jsonl")(dataset="gsm8k_tiny", accuracy_band=band)

    with pytest.raises(ValueError, match="unknown keys \\['lo'\\]"):
        make({"model": "tiny", "lo": 0.1}).rows("train")
    with pytest.raises(ValueError, match="needs `model`"):
        make({"low": 0.1}).rows("train")
    with pytest.raises(ValueError, match="must be a mapping"):
        make([0.2, 0.8]).rows("train")
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        TASKS.get("math.gsm8k_jsonl")(dataset="nope").rows("train")
