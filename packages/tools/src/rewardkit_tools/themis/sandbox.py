"""A subprocess sandbox for the Themis code tool: a fresh `python -I` per run, in a
temporary directory, with a wall-clock timeout and CPU / memory / file-size limits.

This is weak isolation (the process runs as the same user); for untrusted code at scale
use rewardkit-code's docker sandbox (Code(backend="rewardkit_code")).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

# Runs the program with its stdout captured, then each test; prints one JSON line.
RUNNER = r"""
import contextlib, io, json, sys
job = json.loads(sys.stdin.read())
buf, out = io.StringIO(), {"error": None, "tests": []}
scope = {"__name__": "__main__"}
with contextlib.redirect_stdout(buf):
    try:
        exec(compile(job["program"], "<program>", "exec"), scope)
    except BaseException as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    if out["error"] is None:
        for test in job["tests"]:
            try:
                exec(compile(test, "<test>", "exec"), scope)
                out["tests"].append(None)
            except BaseException as exc:
                out["tests"].append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
out["stdout"] = buf.getvalue()[-2000:]
sys.__stdout__.write("\n" + json.dumps(out) + "\n")
"""


@dataclass
class RunResult:
    stdout: str = ""
    error: str | None = None  # the program failed, timed out or the sandbox broke
    tests: list[str | None] = field(default_factory=list)  # None = passed, else the failure


def _limits(memory_mb: int, cpu_seconds: int) -> None:  # runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def run_python(
    program: str, tests: list[str] | None = None, timeout: float = 5.0, memory_mb: int = 512
) -> RunResult:
    """Run `program`, then each test (assert statements), in a fresh interpreter."""
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    job = json.dumps({"program": program, "tests": list(tests or [])})
    cpu = max(1, int(timeout) + 1)
    with tempfile.TemporaryDirectory(prefix="themis-code-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", RUNNER],
                input=job,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp,
                env={"PATH": os.environ.get("PATH", "")},
                preexec_fn=(lambda: _limits(memory_mb, cpu)) if os.name == "posix" else None,
            )
        except subprocess.TimeoutExpired:
            return RunResult(error=f"timed out after {timeout:g}s")
    lines = proc.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip()[-300:]
        return RunResult(error=f"the program crashed (exit {proc.returncode}): {tail}")
    return RunResult(stdout=out["stdout"], error=out["error"], tests=out["tests"])
