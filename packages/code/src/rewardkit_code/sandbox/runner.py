"""The long-lived runner that executes untrusted programs, one job per program.

Standard library only (Python >= 3.9), shipped as source text: the docker backend starts
it as the container's main process, the local backend as a subprocess:

    python3 -I -c <this file> <settings json> <calls.py source>

settings: {"cleanup": "all" | "group", "workdir": path, "tmpdir": path, "drop_uid": int|null}.
It reads one JSON job per line on stdin and answers one JSON line per job on stdout:

    job    {"id": 7, "program": str, "tests": [{"kind": "assert", "code": str} |
            {"kind": "io", "stdin": str}], "timeout": s, "budget": s, "grace": s,
            "max_output": bytes, "memory_mb": int}
    answer {"id": 7, "results": [{"status": "pass" | "fail" | "error" | "timeout" |
            "skipped" | "completed", "message": str, "seconds": float, "stdout": str}],
            "clean": bool}

One job:
1. The program's process is forked from the template (calls.template_main), an
   interpreter started fresh once per worker that never holds a test (never a fork of this
   runner, whose memory holds the tests). It gets its own session, rlimits (address space,
   CPU, file size, no core), the sandbox user, an empty work directory as cwd, a private
   TMPDIR and nothing inherited but its pipes.
2. Stdin/stdout tests run first: for each, the program's process forks a child that runs
   the program on the test's stdin. Its stdout goes back to the host, which compares it
   with the expected output (the expected output never enters the sandbox).
3. Assert tests: the program is loaded once; for each test the program's process forks a
   copy of the loaded state, and a judge (`calls.judge_main`, forked from this runner) runs
   the test code against that copy over a socket pair. The verdict comes back on a socket
   that only the judge holds (see calls.py for why the program cannot forge it). The judge
   is kept from program to program (forking one per program cost more than the tests):
   after every job it must answer a ping and show the nice value, scheduling, CPU affinity
   and rlimits it was given, else it is replaced; so is one that timed out, died or
   used up its CPU reserve.
4. Time: each test may take `timeout` seconds and the program `budget` seconds in all,
   starting and loading included. Once a test has timed out, the tests after it share at
   most `grace` seconds, so a program that hangs on every test costs about one timeout.
   Tests left when the budget is spent are reported as "skipped" without running.
5. After each test the program's copy is killed with whatever it started. After the job
   every other process but the judge is killed ("all": this runner is PID 1 of a container,
   which the other processes of the container cannot signal) or the program's process
   groups are ("group": the local backend), and the work and tmp directories are emptied.
"""

import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time

CHUNK = 65536
STDERR_CAP = 16384
MIN_RUN = 0.01  # with less than this left of the budget, a test is skipped
MAX_COPIES = 16  # copies of the loaded program forked at once (calls.MAX_COPIES)
NO_VERDICT = "the test ended without a verdict (it exited or was killed)"
CALLS = {"__name__": "calls"}  # calls.py, executed at start (the judge side is used here)
SIGNAL_HINTS = {9: " (memory limit?)", 24: " (CPU time limit)", 25: " (file size limit)"}
JUDGE_CPU_RESERVE = 600  # CPU seconds a kept judge may use in all before it is replaced
RLIMITS = sorted({getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")})


class OutputCap(Exception):
    pass


class Settings:
    def __init__(self, raw, job):
        self.cleanup = raw["cleanup"]
        self.workdir = raw["workdir"]
        self.jobdir = os.path.join(raw["workdir"], "run")
        self.tmpdir = raw["tmpdir"]
        self.drop_uid = raw.get("drop_uid")
        self.timeout = float(job["timeout"])
        self.max_output = int(job.get("max_output", 1 << 20))
        self.limits = {
            "memory_mb": int(job.get("memory_mb", 512)),
            "cpu_seconds": int(float(job.get("budget", self.timeout))) + 2,
            "drop_uid": self.drop_uid,
        }


# -- processes -------------------------------------------------------------------------------


class Output:
    """One output pipe of the program, read as it comes. stdout keeps up to the cap and
    raises OutputCap past it; stderr keeps its tail."""

    def __init__(self, fd, cap=None):
        self.fd, self.cap, self.open = fd, cap, True
        self.data = bytearray()
        self.mark = 0  # where the current test's output starts

    def read(self):
        chunk = os.read(self.fd, CHUNK)
        if not chunk:
            self.open = False
            return
        self.data += chunk
        if self.cap is None:
            if len(self.data) > 2 * STDERR_CAP:
                del self.data[: len(self.data) - STDERR_CAP]
                self.mark = 0
        elif len(self.data) - self.mark > self.cap:
            raise OutputCap()

    def since_mark(self):
        return bytes(self.data[self.mark :]).decode("utf-8", "replace")

    def start_test(self):
        if self.cap is not None:
            del self.data[:]
        self.mark = len(self.data)

    def last_line(self):
        lines = self.since_mark().strip().splitlines()
        return lines[-1][:300] if lines else ""


def _wait(readers, deadline, outputs):
    """Block until one of `readers` is readable (returned) or the deadline (None), reading
    the open `outputs` meanwhile."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        watch = list(readers) + [o.fd for o in outputs if o.open]
        ready = select.select(watch, [], [], remaining)[0]
        for o in outputs:
            if o.fd in ready:
                o.read()
        for fd in readers:
            if fd in ready:
                return fd


class Template:
    """The template process (calls.template_main), started with exec so that it shares no
    memory with this runner; it forks the program's process of every job."""

    def __init__(self, settings):
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = json.dumps({"drop_uid": settings.drop_uid})
        self.pid = os.fork()
        if self.pid == 0:
            try:
                null = os.open(os.devnull, os.O_RDWR)
                CALLS["place_fds"]([null, null, 2, theirs.fileno()])
                python = sys.executable or "python3"
                os.execv(python, [python, "-I", "-c", CALLS_SOURCE, config])
            except BaseException as exc:
                os.write(2, f"template start failed: {exc!r}\n".encode())
            os._exit(127)
        theirs.close()
        self.seq = 0
        if self._receive(time.monotonic() + 30.0) is None:
            self.close()
            raise RuntimeError("the template process did not start")

    def request(self, message, deadline, fds=()):
        """Send a message (with file descriptors) and wait for its reply; None on failure."""
        self.seq += 1
        data = json.dumps(dict(message, seq=self.seq)).encode()
        try:
            socket.send_fds(self.ctrl, [data], list(fds))
        except OSError:
            return None
        return self._receive(deadline)

    def _receive(self, deadline):
        while _wait([self.ctrl.fileno()], deadline, []) is not None:
            try:
                reply = json.loads(self.ctrl.recv(65536) or b"null")
            except (OSError, ValueError):
                return None
            if not isinstance(reply, dict):
                return None
            if reply.get("seq") == self.seq:
                return reply
        return None

    def gone(self):
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            return True

    def close(self):
        self.ctrl.close()
        _kill(self.pid)


_TEMPLATE = None


def template(settings):
    """The live template, started again when a program killed or stopped it."""
    global _TEMPLATE
    if _TEMPLATE is not None:
        try:
            os.kill(_TEMPLATE.pid, signal.SIGCONT)  # a program may have stopped it
            alive = os.waitpid(_TEMPLATE.pid, os.WNOHANG)[0] == 0
        except (OSError, ChildProcessError):
            alive = False
        if not alive:
            _TEMPLATE.close()
            _TEMPLATE = None
    if _TEMPLATE is None:
        _TEMPLATE = Template(settings)
    return _TEMPLATE


class ProgramProcess:
    """The program's process (calls.program_main), seen from the runner."""

    def __init__(self, program, settings, template_process):
        self.settings = settings
        src_path = os.path.join(settings.workdir, ".program")
        with open(src_path, "w") as f:
            f.write(program)
        src = os.open(src_path, os.O_RDONLY)
        os.unlink(src_path)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        spawn = {
            "op": "spawn",
            "limits": settings.limits,
            "cwd": settings.jobdir,
            "env": {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "HOME": settings.jobdir,
                "TMPDIR": settings.tmpdir,
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        }
        self.template = template_process
        fds = [src, out_w, err_w, theirs.fileno()]
        reply = self.template.request(spawn, time.monotonic() + 10.0, fds)
        if reply is None:  # the template was stopped or killed: one more try with a new one
            self.template.close()
            self.template = template(settings)
            reply = self.template.request(spawn, time.monotonic() + 10.0, fds)
        for fd in (src, out_w, err_w):
            os.close(fd)
        theirs.close()
        self.pid = reply.get("pid") if reply else None
        self.out = Output(out_r, settings.max_output)
        self.err = Output(err_r)
        self.copies = []  # pids of the copies that ran a test, killed after it
        self.spare = []  # (pid, socket) of copies forked ahead, waiting for their tests
        self.status = None
        self.seq = 0
        self.gone = not isinstance(self.pid, int)
        self.timed_out = False

    @property
    def outputs(self):
        return [self.out, self.err]

    def send(self, message, fds=()):
        """Send one control message; returns its sequence number (replies carry it)."""
        self.seq += 1
        message = dict(message, seq=self.seq)
        try:
            socket.send_fds(self.ctrl, [json.dumps(message).encode()], list(fds))
        except OSError:
            self.gone = True
        return self.seq

    def receive(self, deadline, seq=0, extra=()):
        """The reply to message `seq` (older replies are dropped), or None when the process
        is gone or the deadline passed (`self.timed_out` tells which), reading the
        program's output meanwhile. Raises OutputCap."""
        self.timed_out = False
        while not self.gone:
            if _wait([self.ctrl.fileno()], deadline, [*extra, *self.outputs]) is None:
                self.timed_out = True
                return None
            try:
                data = self.ctrl.recv(65536)
                message = json.loads(data) if data else None
            except (OSError, ValueError):
                message = None
            if not isinstance(message, dict):
                self.gone = True  # closed its end, or wrote garbage on it
                return None
            if message.get("seq") == seq:
                return message
        return None

    def note_copy(self, reply):
        """Record the forked copy a reply names; False if it names none of ours."""
        pid = reply.get("pid")
        if not isinstance(pid, int) or not self.is_copy(pid):
            return False
        self.copies.append(pid)
        return True

    def exit_description(self):
        """How the process ended (after it stopped answering)."""
        if isinstance(self.pid, int) and self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            reply = self.template.request({"op": "reap", "pid": self.pid}, time.monotonic() + 5)
            self.status = reply.get("status") if reply else None
        return _describe_status(self.status, self.err.last_line())

    def is_copy(self, pid):
        """True if `pid` is a child of the program's process (a forked copy)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1]) == self.pid
        except (OSError, ValueError, IndexError):
            return False


def _describe_status(status, stderr_tail=""):
    if status is None:
        return "the program's process ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}{SIGNAL_HINTS.get(sig, '')}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"exited with code {code} {stderr_tail}".strip()


# -- one test --------------------------------------------------------------------------------


def _result(status, message="", seconds=0.0, stdout=""):
    return {"status": status, "message": message, "seconds": round(seconds, 6), "stdout": stdout}


class Judge:
    """A judge process (calls.judge_main) forked from this runner; kept for later programs
    while their settings match and it stays intact (`judge_for`, `_check_judge`)."""

    def __init__(self, settings):
        self.key = _judge_key(settings)
        self.limits = dict(
            settings.limits, cpu_seconds=settings.limits["cpu_seconds"] + JUDGE_CPU_RESERVE
        )
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                null = os.open(os.devnull, os.O_RDWR)
                CALLS["place_fds"]([null, null, null, theirs.fileno()])
            except BaseException:
                os._exit(70)
            CALLS["judge_main"](self.limits, settings.max_output, settings.jobdir)
        theirs.close()

    def expected_state(self):
        """The runner's own scheduling and rlimits, with the four limits calls.isolate sets."""
        nice, policy, cpus, limits = BASELINE
        mem = self.limits["memory_mb"] * 1024 * 1024
        cpu = self.limits["cpu_seconds"]
        cap = CALLS["FILE_CAP"]
        own = {
            resource.RLIMIT_AS: (mem, mem),
            resource.RLIMIT_CPU: (cpu, cpu),
            resource.RLIMIT_FSIZE: (cap, cap),
            resource.RLIMIT_CORE: (0, 0),
        }
        return nice, policy, cpus, tuple(own.get(r, lim) for r, lim in zip(RLIMITS, limits))

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("inf")

    def ping(self, deadline):
        """True when the judge answers (it is alive, running and not stuck in a test)."""
        try:
            self.ctrl.send(json.dumps({"ping": 1}).encode())
        except OSError:
            return False
        if _wait([self.ctrl.fileno()], deadline, []) is None:
            return False
        try:
            return json.loads(self.ctrl.recv(65536)).get("pong") == 1
        except (OSError, ValueError, AttributeError):
            return False

    def judge(self, code, sock, deadline, outputs):
        """(status, message) for one test, or None when the deadline passed first."""
        try:
            socket.send_fds(self.ctrl, [json.dumps({"code": code}).encode()], [sock.fileno()])
        except OSError:
            return "error", NO_VERDICT
        if _wait([self.ctrl.fileno()], deadline, outputs) is None:
            return None
        try:
            verdict = json.loads(self.ctrl.recv(65536))
            return verdict["status"], str(verdict["message"])
        except (OSError, ValueError, KeyError, TypeError):
            return "error", NO_VERDICT

    def close(self):
        self.ctrl.close()
        _kill(self.pid)


_JUDGE = None


def _judge_key(settings):
    return settings.limits["memory_mb"], settings.max_output, settings.jobdir, settings.drop_uid


def judge_for(settings):
    """The kept judge if it fits these settings and has CPU time left, else a new one."""
    global _JUDGE
    if _JUDGE is not None and (
        _JUDGE.key != _judge_key(settings)
        or _JUDGE.cpu_seconds() + settings.limits["cpu_seconds"] > _JUDGE.limits["cpu_seconds"]
    ):
        drop_judge()
    if _JUDGE is None:
        _JUDGE = Judge(settings)
    return _JUDGE


def drop_judge():
    """Kill the kept judge (stuck in a test, dead, tampered with, or unfit)."""
    global _JUDGE
    if _JUDGE is not None:
        _JUDGE.close()
        _JUDGE = None


def _check_judge():
    """After a job, once the program's processes are gone: keep the judge only if it answers
    a ping and its scheduling and rlimits are still those it was given. (A program of the
    same uid can signal it, renice it, pin it or lower its limits; that must not reach the
    tests of later programs.)"""
    if _JUDGE is None:
        return
    try:
        os.kill(_JUDGE.pid, signal.SIGCONT)
    except OSError:
        pass
    if not _JUDGE.ping(time.monotonic() + 2.0) or _state(_JUDGE.pid) != _JUDGE.expected_state():
        drop_judge()


def _fork_copies(proc, count, deadline):
    """Have the program's process fork `count` copies of the loaded program, each waiting on
    its own socket; False if it did not answer in time or named processes not its own."""
    pairs = [socket.socketpair() for _ in range(count)]
    seq = proc.send({"op": "copies"}, [theirs.fileno() for _, theirs in pairs])
    for _, theirs in pairs:
        theirs.close()
    reply = proc.receive(deadline, seq)
    pids = reply.get("pids") if reply else None
    if not isinstance(pids, list) or len(pids) != count or not all(map(proc.is_copy, pids)):
        for ours, _ in pairs:
            ours.close()
        return False
    proc.spare = [(pid, ours) for pid, (ours, _) in zip(pids, pairs)]
    return True


def assert_test(proc, code, limit, tests_left):
    start = time.monotonic()
    deadline = start + limit
    if not proc.spare and not _fork_copies(proc, min(tests_left, MAX_COPIES), deadline):
        if proc.timed_out:
            return _result("timeout", f"exceeded the time limit of {limit:g}s", limit)
        return _result("error", proc.exit_description(), time.monotonic() - start)
    pid, ours = proc.spare.pop(0)
    proc.copies.append(pid)
    try:
        judge = judge_for(proc.settings)
        try:
            verdict = judge.judge(code, ours, deadline, proc.outputs)
        except OutputCap:  # the judge is still in this test: it must not answer the next one
            drop_judge()
            raise
    finally:
        ours.close()
    seconds = time.monotonic() - start
    if verdict is None or verdict[1] == NO_VERDICT:
        drop_judge()  # stuck in the test, or dead: the next test gets a new judge
    if verdict is None:
        return _result("timeout", f"exceeded the time limit of {limit:g}s", seconds)
    return _result(verdict[0], verdict[1], seconds)


def io_test(proc, stdin, limit):
    start = time.monotonic()
    deadline = start + limit
    path = os.path.join(proc.settings.workdir, ".stdin")
    with open(path, "w") as f:
        f.write(stdin)
    stdin_fd = os.open(path, os.O_RDONLY)
    os.unlink(path)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    seq = proc.send({"op": "io"}, [stdin_fd, out_w, err_w])
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    out, err = Output(out_r, proc.settings.max_output), Output(err_r)
    reply = None
    try:
        started = proc.receive(deadline, seq, [out, err])
        if started is not None and "pid" in started:
            proc.note_copy(started)  # (it may have exited and been reaped already)
            reply = proc.receive(deadline, seq, [out, err])
            if reply is not None:
                _drain([out, err, *proc.outputs])
    except OutputCap:
        message = f"output exceeded the cap of {proc.settings.max_output} bytes"
        return _result("error", message, time.monotonic() - start)
    finally:
        os.close(out_r)
        os.close(err_r)
    seconds = time.monotonic() - start
    status = reply.get("exit") if reply else None
    if not isinstance(status, int):
        if proc.timed_out:
            return _result("timeout", f"exceeded the time limit of {limit:g}s", seconds)
        return _result("error", proc.exit_description(), seconds)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return _result("completed", "", seconds, out.since_mark())
    return _result("error", _describe_status(status, err.last_line()), seconds)


def _drain(outputs):
    """Take what the pipes already hold, never wait for more (a grandchild may keep them open)."""
    while True:
        fds = [o.fd for o in outputs if o.open]
        ready = select.select(fds, [], [], 0)[0] if fds else []
        if not ready:
            return
        for o in outputs:
            if o.fd in ready:
                o.read()


# -- one job --------------------------------------------------------------------------------


class Clock:
    """The program's time: `timeout` per test, `budget` in all, `grace` after a timeout."""

    def __init__(self, timeout, budget, grace):
        self.timeout, self.left, self.grace = timeout, budget, grace

    def limit(self):
        return min(self.timeout, self.left)

    def spend(self, seconds, timed_out):
        self.left -= seconds
        if timed_out:
            self.left = min(self.left, self.grace)


def run_job(job, raw_settings):
    settings = Settings(raw_settings, job)
    tests = job["tests"]
    clock = Clock(
        settings.timeout, float(job.get("budget", settings.timeout)), float(job.get("grace", 0.0))
    )
    results = [None] * len(tests)
    _prepare_dir(settings.jobdir)
    _prepare_dir(settings.tmpdir)
    ready = template(settings)  # started once per worker, outside the program's time
    start = time.monotonic()
    proc = ProgramProcess(job["program"], settings, ready)
    clean = True
    try:
        failure = _start(proc, clock, start)
        order = [i for i, t in enumerate(tests) if t["kind"] == "io"]
        order += [i for i, t in enumerate(tests) if t["kind"] != "io"]
        loaded = False
        for i in order:
            test = tests[i]
            if failure is None and test["kind"] != "io" and not loaded:
                failure = _load(proc, clock)
                loaded = True
            if failure is not None:
                results[i] = failure
                continue
            limit = clock.limit()
            if limit < MIN_RUN:
                results[i] = _result("skipped", "not run: the program's time budget was used up")
                continue
            proc.out.start_test()
            proc.err.start_test()
            try:
                if test["kind"] == "io":
                    res = io_test(proc, test.get("stdin", ""), limit)
                else:
                    left = sum(1 for k in order[order.index(i) :] if tests[k]["kind"] != "io")
                    res = assert_test(proc, test["code"], limit, left)
            except OutputCap:
                res = _result("error", f"output exceeded the cap of {settings.max_output} bytes")
            clock.spend(res["seconds"], res["status"] == "timeout")
            results[i] = res
            _after_test(proc)
    finally:
        clean = _after_job(proc) and clean
        clean = _prepare_dir(settings.jobdir) and _prepare_dir(settings.tmpdir) and clean
    return results, clean


def _start(proc, clock, start):
    """Wait for the fresh process to compile the program; a failure result or None."""
    try:
        reply = proc.receive(start + clock.limit(), 0)
    except OutputCap:
        return _result("error", f"output exceeded the cap of {proc.settings.max_output} bytes")
    clock.spend(time.monotonic() - start, proc.timed_out)
    if reply and reply.get("ready"):
        return None
    return _load_failure(proc, reply)


def _load(proc, clock):
    """Run the program's top level once; a failure result for every assert test, or None."""
    start = time.monotonic()
    limit = clock.limit()
    if limit < MIN_RUN:
        return _result("skipped", "not run: the program's time budget was used up")
    try:
        reply = proc.receive(start + limit, proc.send({"op": "load"}))
    except OutputCap:
        return _result("error", f"output exceeded the cap of {proc.settings.max_output} bytes")
    clock.spend(time.monotonic() - start, proc.timed_out)
    if reply and reply.get("loaded"):
        return None
    return _load_failure(proc, reply)


def _load_failure(proc, reply):
    if proc.timed_out:
        return _result(
            "timeout", f"loading the program exceeded the time limit of {proc.settings.timeout:g}s"
        )
    if reply and isinstance(reply.get("error"), list) and len(reply["error"]) >= 2:
        kind, message = str(reply["error"][0]), str(reply["error"][1])[:300]
        text = f"{kind}: {message}" if message else kind
        return _result("error", f"{text} (while loading the program)")
    return _result("error", f"{proc.exit_description()} (while loading the program)")


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _after_test(proc):
    """Kill the test's copy of the program with its process group. (A process that left the
    group can only disturb this program's own later tests, and dies with the job.)"""
    for pid in proc.copies:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.copies.clear()


def _after_job(proc):
    try:
        proc.ctrl.close()
    except OSError:
        pass
    for pid, ours in proc.spare:
        ours.close()
        proc.copies.append(pid)
    _after_test(proc)
    if isinstance(proc.pid, int):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if proc.status is None:
            proc.template.request({"op": "reap", "pid": proc.pid}, time.monotonic() + 5)
    # a program of the same uid may have lowered the priority or the limits of the runner
    # or the template (which it cannot undo): then the worker is replaced, or later
    # programs would run slower and fail where others do not
    clean = _state(os.getpid()) == BASELINE and (
        proc.template.gone() or _state(proc.template.pid) == BASELINE
    )
    if proc.settings.cleanup == "all":
        keep = {os.getpid(), proc.template.pid} | ({_JUDGE.pid} if _JUDGE else set())
        clean = _sweep(keep) and clean
    _check_judge()
    _reap()
    for o in proc.outputs:
        os.close(o.fd)
    return clean


def _state(pid):
    """Nice value, scheduling policy, CPU affinity and rlimits of a process."""
    try:
        return (
            os.getpriority(os.PRIO_PROCESS, pid),
            os.sched_getscheduler(pid),
            sorted(os.sched_getaffinity(pid)),
            tuple(resource.prlimit(pid, r) for r in RLIMITS),
        )
    except OSError:
        return None


BASELINE = None  # the runner's own state at start


def _sweep(keep):
    """Kill every process of the container but `keep`; True when none is left alive."""
    for _ in range(200):
        _reap()
        others = [p for p in _live_pids() if p not in keep]
        if not others:
            return True
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.001)
    return False


def _live_pids():
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in ("Z", "X"):
                pids.append(int(name))
    return pids


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _prepare_dir(path):
    """Make `path` an empty directory anyone can write (undoing a program's chmods);
    False if something in it could not be removed."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    if not os.path.isdir(path):
        os.mkdir(path)
    try:
        os.chmod(path, 0o1777)
    except OSError:
        pass
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            try:
                os.chmod(os.path.join(root, d), 0o700)
            except OSError:
                pass
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                os.unlink(entry)
            except OSError:
                pass
    return not os.listdir(path)


def main():
    global CALLS_SOURCE, BASELINE
    raw_settings = json.loads(sys.argv[1])
    CALLS_SOURCE = sys.argv[2]
    exec(compile(CALLS_SOURCE, "calls.py", "exec"), CALLS)
    if raw_settings.get("drop_uid") is not None and os.getuid() != 0:
        raw_settings["drop_uid"] = None
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    CALLS["set_dumpable"](0)
    BASELINE = _state(os.getpid())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.makedirs(raw_settings["tmpdir"], exist_ok=True)

    def send(obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(proto_out, data) :]

    send({"ready": True, "python": sys.version.split()[0], "pid": os.getpid()})
    for line in proto_in:
        job = json.loads(line)
        results, clean = run_job(job, raw_settings)
        send({"id": job["id"], "results": results, "clean": clean})


CALLS_SOURCE = ""

if __name__ == "__main__":
    main()
