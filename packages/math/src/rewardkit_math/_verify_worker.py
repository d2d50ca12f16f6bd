"""A math-verify worker process (see `verify.py`): `python -m rewardkit_math._verify_worker`.

Reads one JSON job per line on stdin, `[gold, pred, float_rounding, timeout]`, and writes
one JSON verdict per line on stdout, `[correct, reason]`. It imports math-verify once,
then keeps a forked executor process that does the sympy work; when a job runs past its
`timeout` the executor is killed and a fresh one forked (milliseconds: the imports are
already done), so this process itself never blocks for longer than the limit. It
imports no torch, and forking is safe here because this process has a single thread.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import re
import sys
from multiprocessing.connection import Connection, wait

from math_verify import LatexExtractionConfig, parse, verify

logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout is off" warning

# LaTeX only: the answer is wrapped in \boxed{} so the LaTeX parser reads all of it. With
# math-verify's plain-expression extractor as well, an answer the LaTeX parser cannot read
# ("2*x**5 + 3*x**3") was matched by a fragment of it (its last number), a false positive
# (see bench/results/math_agreement.md); unparsed answers now compare as strings instead.
_CONFIG = [LatexExtractionConfig(boxed_match_priority=0)]
_PYTHON_POWER = re.compile(r"\*\*\s*(\([^()]*\)|[\w.]+)")


def _normalize(answer: str) -> str:
    """Python / sympy powers as LaTeX: 'x**10' -> 'x^{10}', 'y**(3/2)' -> 'y^{(3/2)}'."""
    return _PYTHON_POWER.sub(lambda m: "^{" + m.group(1) + "}", answer)


def _wrap(answer: str) -> str:
    # \boxed{...} makes math-verify read the whole string as one LaTeX answer.
    return "\\boxed{" + _normalize(answer) + "}"


def check(gold: str, pred: str, float_rounding: int) -> tuple[bool, str]:
    """Parse both answers and compare them (math-verify's signal timeouts off)."""
    gold_parsed = parse(_wrap(gold), extraction_config=_CONFIG, parsing_timeout=None)
    if not gold_parsed:
        return False, "gold_parse_error"
    pred_parsed = parse(_wrap(pred), extraction_config=_CONFIG, parsing_timeout=None)
    if not pred_parsed:
        return False, "parse_error"
    same = verify(gold_parsed, pred_parsed, float_rounding=float_rounding, timeout_seconds=None)
    return bool(same), "match" if same else "mismatch"


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (PR_SET_PDEATHSIG), so a
    killed worker never leaves an executor behind, even one stuck inside sympy."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # elsewhere the executor still exits on end-of-file from its pipe


def _executor(conn: Connection, parent_end: Connection) -> None:
    _die_with_parent()
    parent_end.close()  # else this process holds both ends and never sees end-of-file
    while True:
        try:
            gold, pred, rounding = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(check(gold, pred, rounding))
        except Exception as exc:  # noqa: BLE001 - any sympy failure is a verdict, not a crash
            conn.send((False, f"error: {type(exc).__name__}: {str(exc)[:200]}"))


class _Executor:
    def __init__(self) -> None:
        self.ctx = mp.get_context("fork")
        self.proc = None
        self.conn: Connection | None = None

    def run(self, gold: str, pred: str, rounding: int, timeout: float) -> tuple[bool, str]:
        if self.proc is None or not self.proc.is_alive():
            parent, child = self.ctx.Pipe()
            self.proc = self.ctx.Process(target=_executor, args=(child, parent), daemon=True)
            self.proc.start()
            child.close()
            self.conn = parent
        try:
            self.conn.send((gold, pred, rounding))
            ready = wait([self.conn, sys.stdin], timeout)
            if self.conn in ready:
                return self.conn.recv()
            if ready:  # stdin readable mid-job: end of file, the caller is gone
                self.proc.kill()
                sys.exit(0)
            reason = f"timeout ({timeout:g}s)"
        except (EOFError, OSError) as exc:
            reason = f"executor_died: {type(exc).__name__}"
        self.proc.kill()  # the only way to stop sympy inside C is to end the process
        self.proc.join()
        self.conn.close()
        self.proc = None
        return False, reason


def main() -> None:
    executor = _Executor()
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        gold, pred, rounding, timeout = json.loads(line)
        print(json.dumps(executor.run(gold, pred, rounding, timeout)), flush=True)


if __name__ == "__main__":
    main()
