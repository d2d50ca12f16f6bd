"""Answer equivalence through `math-verify`, with a hard time limit that works from any thread.

math-verify guards sympy with `signal.alarm`, which only works in the main thread of the
main interpreter; the scorer calls sync rewards from a worker thread, and a big-integer
power (`10^{10^{10}}`) blocks inside C where no Python signal can interrupt it anyway.
So parsing and comparison run in separate processes (`_verify_worker.py`, math-verify's
own timeouts off): each worker process keeps a forked executor and kills and re-forks it
when a job runs past `timeout`, so a timeout costs milliseconds and never a hang. The
calling thread only writes a line to a pipe and waits, with its own deadline (the limit
plus a margin) as a last resort against a stuck worker.

The workers are plain subprocesses (`python -m rewardkit_math._verify_worker`), not
multiprocessing children, so they never re-import the caller's `__main__` (and torch).
They are shared by every `MathVerifier` of the process, created on first use (a few
seconds of imports), sized by the largest `num_workers` asked for, and ended at exit.
If the caller dies without exiting cleanly, a worker sees its stdin close (also in the
middle of a job) and exits, and its executor dies with it: nothing is left behind.
"""

from __future__ import annotations

import atexit
import json
import queue
import select
import subprocess
import sys
import threading
from dataclasses import dataclass

_STARTUP_TIMEOUT_S = 120.0  # importing sympy + math-verify on a busy machine
_MARGIN_S = 10.0  # the worker answers "timeout" itself; this only catches a stuck worker


@dataclass(frozen=True)
class Verdict:
    """Whether the prediction equals the gold answer; `reason` says why not, when it fails."""

    correct: bool
    reason: str  # "match" | "mismatch" | "timeout" | "gold_parse_error" | "parse_error" | ...


class _Worker:
    """One worker subprocess, started on first use and again after it dies."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _readline(self, deadline: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], deadline)
        return self.proc.stdout.readline() if ready else None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewardkit_math._verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        if self._readline(_STARTUP_TIMEOUT_S) != '"ready"\n':
            self.kill()
            raise RuntimeError("the math-verify worker process did not start")

    def kill(self, grace: float = 0.0) -> None:
        """End the worker: with `grace`, first close its stdin and let it exit by itself."""
        if self.proc is not None:
            if grace > 0 and self.proc.stdin is not None:
                try:
                    self.proc.stdin.close()
                    self.proc.wait(timeout=grace)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self.proc.kill()  # its executor dies with it (PR_SET_PDEATHSIG)
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        self.proc = None

    def run(self, gold: str, pred: str, rounding: int, timeout: float) -> tuple[bool, str]:
        if self.proc is None or self.proc.poll() is not None:
            self.kill()
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps([gold, pred, rounding, timeout]) + "\n")
            self.proc.stdin.flush()
            line = self._readline(timeout + _MARGIN_S)
        except OSError as exc:
            self.kill()
            return False, f"worker_died: {type(exc).__name__}"
        if not line:
            self.kill()
            return False, "timeout (worker stuck)" if line is None else "worker_died"
        correct, reason = json.loads(line)
        return bool(correct), str(reason)


class _Pool:
    """Worker processes lent to one calling thread at a time."""

    def __init__(self) -> None:
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()  # reuse warm workers first
        self.size = 0
        self.lock = threading.Lock()

    def grow(self, n: int) -> None:
        with self.lock:
            while self.size < n:
                self.idle.put(_Worker())  # started lazily, by its first job
                self.size += 1

    def run(self, gold: str, pred: str, rounding: int, timeout: float) -> tuple[bool, str]:
        worker = self.idle.get()
        try:
            return worker.run(gold, pred, rounding, timeout)
        finally:
            self.idle.put(worker)

    def shutdown(self) -> None:
        while True:
            try:
                self.idle.get_nowait().kill(grace=1.0)
            except queue.Empty:
                return


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool(num_workers: int) -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _Pool()
            atexit.register(_POOL.shutdown)
    _POOL.grow(num_workers)
    return _POOL


class MathVerifier:
    """`verifier(gold, pred) -> Verdict` with a per-call time limit, safe from any thread.

    `timeout`: seconds for parsing and comparing one pair (worker start-up not counted).
    `max_chars`: longer answers are refused before any parsing ("too_long").
    `float_rounding`: decimal places math-verify rounds floats to before comparing.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        max_chars: int = 1000,
        float_rounding: int = 6,
        num_workers: int = 2,
    ):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.timeout = timeout
        self.max_chars = max_chars
        self.float_rounding = float_rounding
        self.num_workers = num_workers

    def __call__(self, gold: str, pred: str) -> Verdict:
        if not isinstance(gold, str) or not isinstance(pred, str):
            raise TypeError(
                f"gold and pred must be str, got {type(gold).__name__} and {type(pred).__name__}"
            )
        if not gold.strip():
            return Verdict(False, "empty_gold")
        if not pred.strip():
            return Verdict(False, "empty_answer")
        if len(pred) > self.max_chars:
            return Verdict(False, "too_long")
        correct, reason = _pool(self.num_workers).run(gold, pred, self.float_rounding, self.timeout)
        return Verdict(correct, reason)
