"""Task `code.functions`: the generated set is deterministic, its splits are disjoint and
stratified, its tests cannot be passed by a constant answer, and every canonical solution
passes every test in the sandbox while wrong programs do not."""

from __future__ import annotations

import pytest

from rewardkit_code.execution import CodeExecutor
from rewardkit_code.functions import TESTS_PER_TASK, Functions, build_tasks, split_tasks


@pytest.fixture(scope="module")
def tasks():
    return build_tasks(0)


def _expected(test: dict) -> str:
    return test["code"].rsplit("==", 1)[1].strip()


def test_set_is_deterministic_with_unique_names_and_enough_tests(tasks):
    assert [t["tests"] for t in build_tasks(0)] == [t["tests"] for t in tasks]
    assert len({t["task_id"] for t in tasks}) == len(tasks) >= 300
    for t in tasks:
        assert len(t["tests"]) == TESTS_PER_TASK >= 5
        calls = [c["code"].split("==")[0] for c in t["tests"]]
        assert len(set(calls)) == len(calls), t["task_id"]  # no repeated test


def test_no_constant_answer_passes_every_test(tasks):
    # e.g. divisible_by_17 on random integers: six False results would let `return False` pass
    same = [t["task_id"] for t in tasks if len({_expected(c) for c in t["tests"]}) < 2]
    assert same == []


def test_splits_are_disjoint_cover_every_family_and_follow_the_share(tasks):
    split = split_tasks(tasks, 0.5, 0)
    train = {t["task_id"] for t in split["train"]}
    test = {t["task_id"] for t in split["test"]}
    assert not train & test and len(train | test) == len(tasks)
    assert abs(len(test) / len(tasks) - 0.5) < 0.05
    families = {t["family"] for t in tasks}
    for family in families:
        n = sum(t["family"] == family for t in tasks)
        if n >= 2:  # a family of one goes to one side
            assert any(t["family"] == family for t in split["train"]), family
            assert any(t["family"] == family for t in split["test"]), family


def test_task_rows_prompt_and_bad_options():
    task = Functions(test_share=0.25)
    assert len(task.rows("test")) < len(task.rows("train"))
    row = task.rows("test")[0]
    (message,) = task.prompt(row)
    assert message["role"] == "user" and f"`{row['entry_point']}(" in message["content"]
    assert "```python" in message["content"]
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        task.rows("validation")
    with pytest.raises(ValueError, match="test_share"):
        Functions(test_share=1.0)


def _block(source: str) -> str:
    return f"```python\n{source}```\n"


def test_canonical_solutions_pass_and_wrong_programs_fail_in_the_sandbox(tasks, local_sandbox):
    executor = CodeExecutor(sandbox=local_sandbox, timeout=3.0)
    canonical = executor.outcomes([(_block(t["canonical_solution"]), t) for t in tasks])
    failing = [
        t["task_id"]
        for t, outs in zip(tasks, canonical, strict=True)
        if not all(o.passed for o in outs)
    ]
    assert failing == []
    # a body that returns a constant, or the argument unchanged, fails at least one test
    wrong = []
    for t in tasks:
        header = t["canonical_solution"].splitlines()[0]
        first_arg = header[header.index("(") + 1 :].split(",")[0].rstrip("):")
        wrong += [(t, f"{header}\n    return None\n"), (t, f"{header}\n    return {first_arg}\n")]
    outcomes = executor.outcomes([(_block(src), t) for t, src in wrong])
    passed_all = [
        t["task_id"]
        for (t, _), outs in zip(wrong, outcomes, strict=True)
        if all(o.passed for o in outs)
    ]
    assert passed_all == []
