"""rewardkit replay: re-score a run's completions.jsonl (as the trainer writes it) and find
the samples one reward loves and another rejects."""

from __future__ import annotations

import csv
import io
import json

import pytest

from rewardkit.cli import main
from rewardkit.replay import disagreements, rescore
from rewardkit.rewards import WeightedReward
from rewardkit.tasks.arith import Arithmetic
from rewardkit.trainer.logging import write_completions
from rewardkit.types import Sample

TASK_OPTIONS = {"digits": 1, "train_size": 50, "test_size": 10}


def write_run(tmp_path, completions, recorded, config=True):
    """A run directory as the trainer leaves it: completions.jsonl (written by the trainer's
    own writer, two steps) and config.json with the task (flattened keys)."""
    rows = Arithmetic(**TASK_OPTIONS).rows("train")
    run = tmp_path / "run"
    run.mkdir()
    samples = [
        Sample(prompt=rows[i]["prompt"], completion=c(rows[i]["answer"]), group=i // 2)
        for i, c in enumerate(completions)
    ]
    half = len(samples) // 2
    for step, part in ((1, slice(0, half)), (2, slice(half, None))):
        raw = {name: values[part] for name, values in recorded.items()}
        write_completions(run / "completions.jsonl", step, samples[part], raw, [0.0] * 4)
    if config:
        flat = {"task": "core.arith", **{f"task_options.{k}": v for k, v in TASK_OPTIONS.items()}}
        (run / "config.json").write_text(json.dumps(flat))
    return run, rows


COMPLETIONS = [
    lambda a: a,  # exact 1, format 1
    lambda a: f"{a} because I said so",  # exact 1, format 0: exact loves, format rejects
    lambda a: "12345",  # exact 0, format 1: format loves, exact rejects
    lambda a: "no idea",  # 0, 0
]


def test_replay_json_finds_where_rewards_disagree(tmp_path, capsys):
    run, _ = write_run(tmp_path, COMPLETIONS, {"core.number_format": [1.0, 0.0, 1.0, 0.0]})
    out = tmp_path / "report.json"
    rc = main(["replay", str(run / "completions.jsonl"), "--rewards",
               "core.exact_answer,core.number_format", "--output", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    pairs = {(p["a"], p["b"]): p for p in report["pairs"]}
    exact_fmt = pairs[("core.exact_answer", "core.number_format")]
    assert exact_fmt["a_loves_b_rejects"] == 1 and exact_fmt["b_loves_a_rejects"] == 1
    assert exact_fmt["pearson"] == pytest.approx(0.0)  # [1,1,0,0] vs [1,0,1,0]
    # the recorded score and the re-scored one are the same reward: full agreement
    same = pairs[("core.number_format", "run:core.number_format")]
    assert same["pearson"] == pytest.approx(1.0)
    assert same["a_loves_b_rejects"] == same["b_loves_a_rejects"] == 0
    flags = [r["disagreements"] for r in report["rows"]]
    assert flags[0] == [] and flags[3] == []
    assert "core.exact_answer loves, core.number_format rejects" in flags[1]
    assert "core.number_format loves, core.exact_answer rejects" in flags[2]
    assert [r["scores"]["core.exact_answer"] for r in report["rows"]] == [1.0, 1.0, 0.0, 0.0]
    assert [r["step"] for r in report["rows"]] == [1, 1, 2, 2]
    table = capsys.readouterr().out  # the table is printed as well
    assert "top 2 disagreements" in table and "because I said so" in table


def test_replay_csv_to_stdout_and_without_recorded(tmp_path, capsys):
    run, _ = write_run(tmp_path, COMPLETIONS, {"core.number_format": [1.0, 0.0, 1.0, 0.0]})
    rc = main(["replay", str(run), "--rewards", "core.exact_answer,core.number_format",
               "--format", "csv", "--no-recorded"])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4
    assert list(rows[0])[4:6] == ["core.exact_answer", "core.number_format"]
    assert "run:core.number_format" not in rows[0]
    assert rows[1]["disagreements"] == "core.exact_answer loves, core.number_format rejects"
    assert float(rows[1]["max_gap"]) == 1.0 and rows[0]["disagreements"] == ""


def test_one_reward_is_compared_with_the_recorded_ones(tmp_path, capsys):
    # trained on a "length" reward that loved the long wrong answer
    run, _ = write_run(tmp_path, COMPLETIONS, {"length": [0.1, 0.9, 0.2, 0.3]})
    rc = main(["replay", str(run), "--rewards", "core.exact_answer", "--format", "json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    (pair,) = report["pairs"]
    assert (pair["a"], pair["b"]) == ("core.exact_answer", "run:length")
    # normalised length [0, 1, 0.125, 0.25]; exact [1, 1, 0, 0]: row 0 exact loves, length rejects
    assert pair["a_loves_b_rejects"] == 1 and pair["b_loves_a_rejects"] == 0
    assert report["rows"][0]["max_gap"] == pytest.approx(1.0)


def test_prompts_outside_the_task_are_an_error_or_dropped_and_counted(tmp_path, capsys):
    run, _ = write_run(tmp_path, COMPLETIONS, {"x": [0.0, 1.0, 0.0, 1.0]})
    path = run / "completions.jsonl"
    lines = path.read_text().splitlines()
    stray = json.loads(lines[0]) | {"prompt": "9999+1="}
    path.write_text("\n".join([*lines, json.dumps(stray)]) + "\n")
    args = ["replay", str(path), "--rewards", "core.exact_answer", "--format", "json"]
    assert main(args) == 2
    assert "1 of 5 completions have a prompt that is not in task 'core.arith'" in (
        capsys.readouterr().err
    )
    assert main([*args, "--skip-unmatched"]) == 0
    captured = capsys.readouterr()
    assert "dropped 1 completions" in captured.err
    assert len(json.loads(captured.out)["rows"]) == 4


def test_task_given_on_the_command_line_and_bad_files(tmp_path, capsys):
    run, _ = write_run(tmp_path, COMPLETIONS, {"x": [0.0, 1.0, 0.0, 1.0]}, config=False)
    args = ["replay", str(run), "--rewards", "core.exact_answer", "--format", "json"]
    assert main(args) == 2  # no task known: exact_answer needs meta["answer"]
    assert "needs the dataset row to have an 'answer'" in capsys.readouterr().err
    opts = [f"--task-option={k}={v}" for k, v in TASK_OPTIONS.items()]
    assert main([*args, "--task", "core.arith", *opts]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "completion": "1"}\n{oops\n')
    assert main(["replay", str(bad), "--rewards", "core.number_format"]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "none.jsonl"), "--rewards", "core.number_format"]) == 2
    assert main(["replay", str(run), "--rewards", "no.such"]) == 2
    assert "unknown reward 'no.such'" in capsys.readouterr().err


def test_rescore_batches_by_step_with_distinct_groups():
    batches = []

    def record(samples):
        batches.append([(s.group, s.meta["k"]) for s in samples])
        return [float(s.meta["k"]) for s in samples]

    rows = [
        {"step": 1, "group": 0, "completion": "a", "meta": {"k": 1}},
        {"step": 2, "group": 0, "completion": "b", "meta": {"k": 2}},
        {"step": 1, "group": 1, "completion": "c", "meta": {"k": 3}},
        {"step": 1, "group": 0, "completion": "d", "meta": {"k": 4}},
    ]
    scores = rescore(rows, [WeightedReward("rec", record)], timeout=10)
    assert scores == {"rec": [1.0, 2.0, 3.0, 4.0]}
    assert batches == [[(0, 1), (1, 3), (0, 4)], [(0, 2)]]


def test_constant_rewards_cannot_disagree():
    pairs, constant, gaps, flags = disagreements(
        {"a": [1.0, 1.0, 1.0], "b": [0.0, 2.0, 4.0], "c": [4.0, 2.0, 0.0]}, threshold=0.5
    )
    assert constant == {"a": 1.0}
    (pair,) = pairs
    assert (pair["a"], pair["b"]) == ("b", "c") and pair["pearson"] == pytest.approx(-1.0)
    # normalised b [0, .5, 1], c [1, .5, 0]: gaps -1, 0, 1
    assert pair["a_loves_b_rejects"] == 1 and pair["b_loves_a_rejects"] == 1
    assert gaps == [1.0, 0.0, 1.0] and flags == [["c loves, b rejects"], [], ["b loves, c rejects"]]
