"""From completions to pass vectors: extract code, build the program, run it against the
row's tests in the shared sandbox. Results are cached in the sandbox (see
Sandbox.cached), so code.verpo, code.pass_rate and the multi-turn environment of one step
execute each program once.

Each executor counts, over its lifetime, the programs it sent to the sandbox, the ones
answered from the cache, the completions with no code, and the sandbox's test outcomes
by status; the rewards report them through `stats()` (logged as
`reward/<name>/<counter>`), so a run shows that programs really executed."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from rewardkit_code.extract import build_program, extract_code
from rewardkit_code.sandbox import Sandbox, TestCase, TestOutcome, get_sandbox, parse_tests

NO_CODE = "no code block in the completion"


class CodeExecutor:
    """Runs completions against dataset rows. Options name the sandbox it shares."""

    def __init__(
        self,
        backend: str = "auto",
        timeout: float = 5.0,
        pool_size: int = 2,
        memory_mb: int = 512,
        image: str | None = None,
        require_code_block: bool = True,
        cache: bool = True,
        sandbox: Sandbox | None = None,
        program_budget: float | None = None,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if program_budget is not None and program_budget <= 0:
            raise ValueError(f"program_budget must be > 0 seconds, got {program_budget}")
        self.settings: dict[str, Any] = {"pool_size": pool_size, "memory_mb": memory_mb}
        if image is not None:
            self.settings["image"] = image
        self.backend = backend
        self.timeout = float(timeout)
        # a program's total time; default twice the per-test timeout (see sandbox.base)
        self.program_budget = 2.0 * self.timeout if program_budget is None else program_budget
        self.require_code_block = require_code_block
        self.cache = cache
        self._sandbox = sandbox
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:  # created on first use: building a reward starts nothing
            self._sandbox = get_sandbox(self.backend, **self.settings)
        return self._sandbox

    def outcomes(self, items: list[tuple[str, dict[str, Any]]]) -> list[list[TestOutcome]]:
        """Per-test outcomes for each (completion, row) pair, in order."""
        results: list[list[TestOutcome] | None] = [None] * len(items)
        todo: dict[tuple, list[int]] = {}
        jobs: list[tuple[str, list[TestCase]]] = []
        no_code = 0
        for i, (completion, meta) in enumerate(items):
            tests = tests_of(meta, where=f"item {i}")
            code = extract_code(completion, require_block=self.require_code_block)
            if code is None:
                results[i] = [TestOutcome("error", NO_CODE)] * len(tests)
                no_code += 1
                continue
            program = build_program(code, meta)
            key = (program, tuple(tests), self.timeout, self.program_budget)
            hit = self.sandbox.cached(key) if self.cache else None
            if hit is not None:
                results[i] = hit
            elif key in todo:
                todo[key].append(i)
            else:
                todo[key] = [i]
                jobs.append((program, tests))
        ran = (
            self.sandbox.run_many(jobs, timeout=self.timeout, budget=self.program_budget)
            if jobs
            else []
        )
        for (key, idx), outs in zip(todo.items(), ran, strict=True):
            for i in idx:
                results[i] = outs
            if self.cache:
                self.sandbox.remember(key, outs)
        self._count(len(items), no_code, ran)
        return results  # type: ignore[return-value]

    def _count(self, n_items: int, no_code: int, ran: list[list[TestOutcome]]) -> None:
        with self._counts_lock:
            self.counts["programs_executed"] += len(ran)
            self.counts["programs_cached"] += n_items - len(ran) - no_code
            self.counts["no_code"] += no_code
            for outs in ran:
                self.counts.update(f"tests_{o.status}" for o in outs)
                self.counts["tests_skipped"] += sum(o.skipped for o in outs)

    def stats(self) -> dict[str, float]:
        """The counters so far: programs_executed (sent to the sandbox), programs_cached
        (answered from the result cache or a duplicate in the same batch), no_code,
        tests_<status> (pass, fail, timeout, error) over the executed programs, and
        tests_skipped (timeouts that did not run: their program's time budget was spent)."""
        with self._counts_lock:
            return {k: float(v) for k, v in self.counts.items()}

    def pass_vectors(self, items: list[tuple[str, dict[str, Any]]]) -> list[list[int]]:
        return [[int(o.passed) for o in outs] for outs in self.outcomes(items)]


def tests_of(meta: dict[str, Any], where: str = "sample") -> list[TestCase]:
    if "tests" not in meta:
        raise KeyError(
            f"{where}: the dataset row (Sample.meta) has no 'tests'; code rewards need "
            f"meta['tests'] = [{{'type': 'assert', 'code': ...}} | {{'type': 'io', ...}}]"
        )
    return parse_tests(meta["tests"], where=f"{where}: meta['tests']")


def outcome_counts(outs: list[TestOutcome]) -> dict[str, int]:
    return dict(Counter(o.status for o in outs))
