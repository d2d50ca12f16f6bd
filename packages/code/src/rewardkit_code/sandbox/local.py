"""The local backend: runners as host subprocesses. WEAKER ISOLATION than docker.

For machines without a Docker engine. Each worker is a runner subprocess started with
an empty environment (only PATH and LANG), in a fresh process group, with a private temp
directory as working directory; each program runs in a fresh interpreter with rlimits
(address space, CPU time, file size, no core dumps) in its own session, with TMPDIR set to
a private directory that is emptied after the program, and its process groups are killed
after each test. When the host user is root the programs and judges drop to `nobody` (if
`nobody` can read the interpreter's standard library; otherwise they run as root, and a
program running as root can read the judge's memory: its verdicts can then be forged).

What it does NOT give: no network isolation, no file-system isolation (a program can
read whatever its user can read, and writes to /tmp itself go to the host's /tmp: only
TMPDIR is private), no pid or memory cgroup (a fork bomb is bounded only by the CPU and
memory rlimits of each process), and a process that leaves its session survives the
cleanup. Use it for trusted code, tests and development only.
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rewardkit_code.sandbox.base import Sandbox, Worker, WorkerBroken, runner_command

NOBODY = 65534


@functools.lru_cache(maxsize=8)
def _nobody_can_import(python: str) -> bool:
    """Programs drop to `nobody` only if that user can still read the standard library
    (an interpreter under /root, as pyenv or uv install it, is out of its reach)."""
    out = subprocess.run(
        [python, "-I", "-c", "import os; print(os.path.dirname(os.__file__))"],
        capture_output=True,
        text=True,
    )
    path = Path(out.stdout.strip())
    if out.returncode != 0 or not path.is_dir():
        return False
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH or (p == path and not mode & stat.S_IROTH):
            return False
    return True


class LocalWorker(Worker):
    def __init__(self, python: str, startup_timeout: float):
        self.workdir = tempfile.mkdtemp(prefix="rewardkit-code-")
        drop = NOBODY if os.getuid() == 0 and _nobody_can_import(python) else None
        tmpdir = os.path.join(self.workdir, "tmp")
        args = runner_command(python, "group", self.workdir, tmpdir, drop)
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            cwd=self.workdir,
            start_new_session=True,
        )
        self.buf = b""
        hello = self.readline(time.monotonic() + startup_timeout)
        if b'"ready": true' not in hello:
            self.kill()
            raise WorkerBroken(f"local runner did not start: {hello[:200]!r}")

    def send(self, data: bytes) -> None:
        if self.proc.poll() is not None:
            raise WorkerBroken(f"local runner exited with code {self.proc.returncode}")
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def readline(self, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken("the local runner did not answer in time")
            if not select.select([fd], [], [], remaining)[0]:
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                raise WorkerBroken(f"the local runner exited (code {self.proc.poll()})")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


class LocalSandbox(Sandbox):
    """Subprocess backend (weaker isolation, see the module docstring)."""

    backend = "local"
    isolation = "weak: rlimits, process group, temp dir, clean environment; no namespaces"

    def __init__(self, python: str | None = None, **settings):
        self.python = python or sys.executable
        super().__init__(**settings)

    def _start_worker(self) -> Worker:
        return LocalWorker(self.python, self.startup_timeout)
