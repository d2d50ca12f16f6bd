"""The sandbox interface shared by the docker and local backends.

A sandbox runs one program against a list of tests and returns one `TestOutcome` per
test (pass, fail, timeout, error with a message), never a single flag: VeRPO needs the
full pass matrix. One job per program (see runner.py): the program is loaded once and
each test runs against a fresh fork of the loaded state, so per-test outcomes cost about
one program load plus each test's own time.

Test formats:
- `AssertTest`: test code (HumanEval's `check(candidate)` call, or assert lines) that uses
  the program's names. It runs in a judge process apart from the program and reaches the
  program only through plain-value calls (calls.py), so the program cannot forge its
  verdict. Pass = the test code finishes; fail = an AssertionError; error = any other
  exception.
- `IOTest`: the program reads `stdin`; pass = it exits normally and its stdout equals
  `expected` after whitespace normalisation (APPS / TACO / CodeContests style). The
  expected output stays on the host.

Time: `timeout` per test, `program_budget` per program (default twice the timeout); once a
test of a program timed out, its remaining tests share `grace_after_timeout` x timeout, so
a program that hangs everywhere costs about one timeout. Tests the budget leaves no time
for are reported as timeouts with `skipped=True` (counted in `skipped_tests`).

Backends keep a fixed number of worker slots (`pool_size`, the concurrency bound); each
slot holds one runner (a warm container or a subprocess). A worker that misbehaves (does
not answer in time, closes its stream, or leaves processes it cannot kill) is killed and
restarted lazily by the next job that takes its slot.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RUNNER_SOURCE = (Path(__file__).parent / "runner.py").read_text()
CALLS_SOURCE = (Path(__file__).parent / "calls.py").read_text()


def runner_command(python: str, cleanup: str, workdir: str, tmpdir: str, drop_uid=None):
    """The command line that starts a runner (see runner.py for its arguments)."""
    settings = {"cleanup": cleanup, "workdir": workdir, "tmpdir": tmpdir, "drop_uid": drop_uid}
    return [python, "-I", "-c", RUNNER_SOURCE, json.dumps(settings), CALLS_SOURCE]


Status = Literal["pass", "fail", "timeout", "error"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (engine unreachable, image missing, worker won't start)."""


class WorkerBroken(Exception):
    """A runner stopped answering or closed its stream; the slot gets a fresh worker."""


@dataclass(frozen=True)
class AssertTest:
    code: str
    name: str = ""


@dataclass(frozen=True)
class IOTest:
    stdin: str
    expected: str
    name: str = ""


TestCase = AssertTest | IOTest


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest class

    status: Status
    message: str = ""
    seconds: float = 0.0
    skipped: bool = False  # not run: the program's time budget was used up

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def parse_tests(raw: Any, where: str = "tests") -> list[TestCase]:
    """Tests from a dataset row: a list of TestCase objects or of dicts
    `{"type": "assert", "code": ...}` / `{"type": "io", "input": ..., "output": ...}`."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(f"{where} must be a non-empty list of tests, got {raw!r:.80}")
    tests: list[TestCase] = []
    for i, t in enumerate(raw):
        if isinstance(t, AssertTest | IOTest):
            tests.append(t)
        elif isinstance(t, dict) and t.get("type") == "assert" and isinstance(t.get("code"), str):
            tests.append(AssertTest(t["code"], str(t.get("name", ""))))
        elif (
            isinstance(t, dict)
            and t.get("type") == "io"
            and isinstance(t.get("input"), str)
            and isinstance(t.get("output"), str)
        ):
            tests.append(IOTest(t["input"], t["output"], str(t.get("name", ""))))
        else:
            raise ValueError(
                f"{where}[{i}] is not a test: expected {{'type': 'assert', 'code': str}} or "
                f"{{'type': 'io', 'input': str, 'output': str}}, got {t!r:.120}"
            )
    return tests


def normalize_output(text: str) -> list[str]:
    """Whitespace normalisation for stdin/stdout tests: runs of blanks collapse, trailing
    spaces and leading/trailing blank lines are ignored."""
    return [" ".join(line.split()) for line in text.strip().splitlines()]


def _short(text: str, n: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def classify(test: TestCase, result: dict[str, Any], max_output: int) -> TestOutcome:
    """One runner result as a TestOutcome: the runner judged assert tests itself; the
    output of stdin/stdout tests is compared here, where the expected output lives."""
    status, seconds = result["status"], float(result.get("seconds", 0.0))
    message = str(result.get("message", ""))
    if status == "skipped":
        return TestOutcome("timeout", message, 0.0, skipped=True)
    if status == "completed":
        if not isinstance(test, IOTest):
            return TestOutcome("error", "the runner answered for a different test kind", seconds)
        if normalize_output(result.get("stdout", "")) == normalize_output(test.expected):
            return TestOutcome("pass", "", seconds)
        return TestOutcome(
            "fail",
            f"wrong output: expected {_short(test.expected, 80)!r}, "
            f"got {_short(result.get('stdout', ''), 80)!r}",
            seconds,
        )
    if status in ("pass", "fail", "error", "timeout"):
        if status == "pass" and not isinstance(test, AssertTest):
            return TestOutcome("error", "the runner answered for a different test kind", seconds)
        return TestOutcome(status, _short(message), seconds)
    return TestOutcome("error", f"sandbox failure: unknown status {status!r}", seconds)


class Worker(ABC):
    """One runner process that answers JSON lines (a container or a subprocess)."""

    @abstractmethod
    def send(self, data: bytes) -> None: ...

    @abstractmethod
    def readline(self, deadline: float) -> bytes: ...

    @abstractmethod
    def kill(self) -> None: ...

    def alive(self) -> bool:
        """Cheap check between jobs that the runner is still there."""
        return True


class Sandbox(ABC):
    """Runs programs against tests in a pool of `pool_size` workers (thread-safe)."""

    backend = "abstract"
    isolation = ""

    def __init__(
        self,
        pool_size: int = 2,
        timeout: float = 5.0,
        memory_mb: int = 512,
        max_output: int = 1 << 20,
        startup_timeout: float = 60.0,
        cache_size: int = 4096,
        program_budget: float | None = None,
        grace_after_timeout: float = 0.1,
    ):
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if memory_mb < 32:
            raise ValueError(f"memory_mb must be >= 32, got {memory_mb}")
        if program_budget is not None and program_budget <= 0:
            raise ValueError(f"program_budget must be > 0 seconds, got {program_budget}")
        if not 0 <= grace_after_timeout <= 1:
            raise ValueError(f"grace_after_timeout must be in [0, 1], got {grace_after_timeout}")
        self.program_budget = program_budget
        self.grace_after_timeout = grace_after_timeout
        self.pool_size = pool_size
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_output = max_output
        self.startup_timeout = startup_timeout
        self._slots: queue.Queue[Worker | None] = queue.Queue()
        for _ in range(pool_size):
            self._slots.put(None)  # started lazily by the first job that takes the slot
        self._ids = itertools.count()
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix=f"{self.backend}-sbx")
        self._lock = threading.Lock()
        self._workers: set[Worker] = set()
        self.restarts = 0  # workers replaced after breaking
        self.skipped_tests = 0  # tests not run because their program's budget was used up
        self.closed = False
        # results by (program, tests, timeout, budget), shared by every user of this sandbox
        # (the rewards and the multi-turn environment of a step execute each program once);
        # only results that do not depend on the machine's load are kept (no timeouts)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, list[TestOutcome]] = OrderedDict()
        # containers must not outlive a sandbox that was dropped without close()
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    @abstractmethod
    def _start_worker(self) -> Worker: ...

    # -- running ------------------------------------------------------------------------
    def run(
        self,
        program: str,
        tests: Sequence[TestCase],
        timeout: float | None = None,
        budget: float | None = None,
    ) -> list[TestOutcome]:
        """Run `program` against each test; one outcome per test, in order. `budget` is the
        program's total time (default: program_budget, else twice the timeout)."""
        if not isinstance(program, str):
            raise TypeError(f"program must be a str, got {type(program).__name__}")
        timeout = self.timeout if timeout is None else timeout
        budget = self.budget_for(timeout) if budget is None else budget
        tests = parse_tests(list(tests))
        job = {
            "program": program,
            "tests": [_test_request(t) for t in tests],
            "timeout": timeout,
            "budget": budget,
            "grace": self.grace_after_timeout * timeout,
            "max_output": self.max_output,
            "memory_mb": self.memory_mb,
        }
        results = self._job(job)
        outcomes = [classify(t, r, self.max_output) for t, r in zip(tests, results, strict=True)]
        skipped = sum(o.skipped for o in outcomes)
        if skipped:
            with self._lock:
                self.skipped_tests += skipped
        return outcomes

    def budget_for(self, timeout: float) -> float:
        """A program's time budget when the per-test timeout is `timeout`."""
        return self.program_budget if self.program_budget is not None else 2.0 * timeout

    def run_many(
        self,
        jobs: Sequence[tuple[str, Sequence[TestCase]]],
        timeout: float | None = None,
        budget: float | None = None,
    ) -> list[list[TestOutcome]]:
        """Run several (program, tests) jobs concurrently over the pool."""
        futures = [self._executor.submit(self.run, p, t, timeout, budget) for p, t in jobs]
        return [f.result() for f in futures]

    def cached(self, key: tuple) -> list[TestOutcome] | None:
        with self._lock:
            return self._cache.get(key)

    def remember(self, key: tuple, outcomes: list[TestOutcome]) -> None:
        """Keep a result unless it may depend on load or on the sandbox's own health: a
        timeout (or a test skipped for time) on a busy machine may pass on an idle one."""
        if self.cache_size <= 0 or any(
            o.status == "timeout" or o.message.startswith("sandbox failure") for o in outcomes
        ):
            return
        with self._lock:
            self._cache[key] = outcomes
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def warm_up(self) -> None:
        """Start every worker now instead of on first use."""
        self.run_many([("pass", [AssertTest("pass")])] * self.pool_size)

    def _job(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        if self.closed:
            raise SandboxError("this sandbox is closed")
        job_id = next(self._ids)
        payload = (json.dumps({"id": job_id, **job}) + "\n").encode()
        n = len(job["tests"])
        # the runner stops the program at its budget; this bounds a runner that hangs
        deadline_s = job["budget"] + job["timeout"] + 10.0 + 0.5 * n
        worker = self._slots.get()
        try:
            if worker is not None and not worker.alive():
                self._discard(worker)
                worker = None
            for attempt in range(2):
                if worker is None:
                    worker = self._new_worker()
                try:
                    worker.send(payload)
                    break
                except (OSError, WorkerBroken):  # died while idle: nothing ran, retry once
                    self._discard(worker)
                    worker = None
                    if attempt == 1:
                        raise SandboxError(
                            "the sandbox worker died before the job was sent"
                        ) from None
            try:
                answer = self._read_answer(worker, job_id, time.monotonic() + deadline_s)
            except WorkerBroken as exc:
                self._discard(worker)
                worker = None
                broken = {"status": "error", "message": f"sandbox failure: {exc}", "seconds": 0.0}
                return [broken] * n
            if not answer.get("clean", True):  # left processes it could not kill
                self._discard(worker)
                worker = None
            results = answer.get("results")
            if not isinstance(results, list) or len(results) != n:
                self._discard(worker)
                worker = None
                broken = {"status": "error", "message": "sandbox failure: malformed answer"}
                return [broken] * n
            return results
        finally:
            self._slots.put(worker)

    def _read_answer(self, worker: Worker, job_id: int, deadline: float) -> dict[str, Any]:
        while True:
            line = worker.readline(deadline)
            try:
                msg = json.loads(line)
            except ValueError as exc:
                raise WorkerBroken(f"unreadable answer from the runner: {line[:200]!r}") from exc
            if msg.get("id") == job_id:
                return msg

    def _new_worker(self) -> Worker:
        worker = self._start_worker()
        with self._lock:
            self._workers.add(worker)
        return worker

    def _discard(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)
            self.restarts += 1
        worker.kill()

    def close(self) -> None:
        """Kill every worker (containers are removed)."""
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
        _kill_all(workers)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_all(workers) -> None:
    for w in list(workers):
        w.kill()


def _test_request(test: TestCase) -> dict[str, Any]:
    """What the runner gets of a test: an IO test's expected output stays here."""
    if isinstance(test, AssertTest):
        return {"kind": "assert", "code": test.code}
    return {"kind": "io", "stdin": test.stdin}
