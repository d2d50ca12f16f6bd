"""Math tasks: the GSM8K JSONL loader and reasoning-gym problems."""

import json

import pytest

from rewardkit.registry import REWARDS, TASKS
from rewardkit.types import Sample
from rewardkit_math.tasks import gsm8k_final_answer


def test_gsm8k_final_answer():
    assert gsm8k_final_answer("He has 3 + 4 = <<3+4=7>>7.\n#### 1,207") == "1207"
    assert gsm8k_final_answer("42") == "42"


def test_gsm8k_jsonl(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"question": "2+2?", "answer": "2+2=4\n#### 4"})
        + "\n\n"
        + json.dumps({"question": "Big?", "answer": "#### 1,000"})
        + "\n"
    )
    task = TASKS.get("math.gsm8k_jsonl")(path=str(tmp_path))
    rows = task.rows("train")
    assert [r["answer"] for r in rows] == ["4", "1000"]
    assert rows[0]["solution"] == "2+2=4\n#### 4"
    assert task.prompt(rows[0]).startswith("2+2?\n") and "\\boxed" in task.prompt(rows[0])
    assert [r.name for r in task.rewards] == ["math.accuracy"]
    with pytest.raises(FileNotFoundError, match="test"):
        task.rows("test")
    with pytest.raises(ValueError, match="split"):
        task.rows("dev")
    (tmp_path / "bad.jsonl").write_text('{"question": "q"}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: missing \\['answer'\\]"):
        TASKS.get("math.gsm8k_jsonl")(train=str(tmp_path / "bad.jsonl")).rows("train")
    with pytest.raises(ValueError, match="needs the option"):
        TASKS.get("math.gsm8k_jsonl")().rows("train")


def test_reasoning_gym_task_and_its_own_scorer(accuracy):
    task = TASKS.get("math.reasoning_gym")(dataset="basic_arithmetic", size=4, test_size=3, seed=5)
    train, test = task.rows("train"), task.rows("test")
    assert len(train) == 4 and len(test) == 3
    assert train != task.rows("test")[:4]  # the splits use different seeds
    assert train == task.rows("train")  # and are deterministic
    row = train[0]
    assert (
        row["dataset"] == "basic_arithmetic"
        and "answer" in row
        and row["question"] in task.prompt(row)
    )
    right = Sample(task.prompt(row), f"\\boxed{{{row['answer']}}}", meta=row)
    wrong = Sample(task.prompt(row), f"\\boxed{{{int(row['answer']) + 1}}}", meta=row)
    # reasoning-gym's default scorer gives partial credit len(gold)/len(answer) when the
    # gold string is inside the answer: appending a digit is not a plain 0 for it
    padded = Sample(task.prompt(row), f"\\boxed{{{row['answer']}1}}", meta=row)
    own = REWARDS.get("math.reasoning_gym_score")()
    scores = [o.score for o in own([right, wrong, padded])]
    assert scores[:2] == [1.0, 0.0]
    assert scores[2] == pytest.approx(len(row["answer"]) / (len(row["answer"]) + 1))
    assert [o.score for o in accuracy([right, wrong, padded])] == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="unknown reasoning-gym dataset"):
        TASKS.get("math.reasoning_gym")(dataset="no_such_thing")
