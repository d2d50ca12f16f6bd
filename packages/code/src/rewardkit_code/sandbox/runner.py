"""The long-lived runner that executes untrusted programs, one fork per run.

This file is self-contained (standard library only, Python >= 3.8) because it is shipped
as source text: the docker backend starts it as the container's main process
(`python3 -I -c <this file> all /work`), the local backend as a subprocess
(`... group <tmpdir>`). It reads one JSON job per line on stdin and answers one JSON
line per job on stdout:

    job    {"id": 7, "runs": [{"program": str, "test": str, "stdin": str,
            "timeout": float, "exit_ok": bool}], "max_output": int, "memory_mb": int}
    answer {"id": 7, "results": [{"status": "exited" | "timeout" | "output_limit",
            "exit_code": int | None, "signal": int | None, "completed": bool,
            "error": {"type", "message", "phase"} | None, "stdout": str, "stderr": str,
            "seconds": float}], "clean": bool}

Each run is a forked child in its own session with rlimits (address space, CPU, file
size, no core files), stdin from a file, stdout/stderr into capped pipes, a fresh work
directory as cwd, and no other open file descriptor: the protocol channel is out of its
reach. The child executes `program` then `test` in one namespace and, only if both
finish, writes a per-run random token on a status pipe: exiting early with status 0
(`os._exit(0)`) is therefore not a pass. After each run everything the child left
behind is killed: with cleanup "all" (the runner is PID 1 of a container, which other
processes of the container cannot signal) by `kill(-1, SIGKILL)` until only the runner
is left; with "group" (local backend) by killing the child's process group.
"""

import json
import os
import resource
import secrets
import select
import shutil
import signal
import sys
import time
import traceback

CHUNK = 65536
STDERR_CAP = 16384
FILE_CAP = 16 * 1024 * 1024


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None).prctl
    except Exception:
        return None


_PRCTL = _load_prctl()  # loaded once: importing ctypes in every child costs ~20 ms


def _prctl_dumpable(value):
    """PR_SET_DUMPABLE (4): 0 keeps same-uid processes from ptracing the runner."""
    if _PRCTL is not None:
        _PRCTL(4, value, 0, 0, 0)


def _child(run, jobdir, fds, nonce, memory_mb, drop_uid):
    """In the forked child: isolate, then execute program and test. Never returns."""
    stdin_fd, out_w, err_w, st_w = fds
    try:
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(st_w, 3)
        os.closerange(4, 65536)
        _prctl_dumpable(1)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer takes the program, not the runner
        except OSError:
            pass
        if drop_uid is not None:
            os.setgroups([])
            os.setgid(drop_uid)
            os.setuid(drop_uid)
        cpu = int(run["timeout"]) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_CAP, FILE_CAP))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.chdir(jobdir)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        sys.argv = ["solution.py"]
    except BaseException as exc:
        os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
        os._exit(70)
    status = open(3, "w", closefd=False)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    phase = "program"
    try:
        exec(compile(run["program"], "solution.py", "exec"), namespace)
        if run.get("test"):
            phase = "test"
            exec(compile(run["test"], "test.py", "exec"), namespace)
    except SystemExit as exc:
        if not (run.get("exit_ok") and exc.code in (None, 0)):
            _report(status, "SystemExit", f"exit code {exc.code!r}", phase)
            os._exit(1)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        _report(status, type(exc).__name__, str(exc), phase)
        os._exit(1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    status.write(json.dumps({"done": nonce}) + "\n")
    status.flush()
    os._exit(0)


def _report(status, kind, message, phase):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    status.write(json.dumps({"type": kind, "message": message[:1000], "phase": phase}) + "\n")
    status.flush()


def _fresh_dir(path):
    """An empty, world-writable work directory (reused when the last run left it empty).

    If a program made it impossible to remove, mkdir raises and the runner exits: the
    host then replaces the worker.
    """
    try:
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            return
    except OSError:
        pass
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        for root, dirs, _ in os.walk(path):
            for d in [os.path.join(root, d) for d in dirs]:
                try:
                    os.chmod(d, 0o700)
                except OSError:
                    pass
        shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path)
    os.chmod(path, 0o777)


def _cleanup(pid, mode):
    """Kill whatever the run left (children, daemons, fork bombs); True when clean."""
    if mode == "group":
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        _reap()
        return True
    for _ in range(200):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        _reap()
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
        if not others:
            return True
        time.sleep(0.01)
    return False


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _execute(run, workdir, nonce, max_output, memory_mb, mode, drop_uid):
    jobdir = os.path.join(workdir, "run")
    _fresh_dir(jobdir)
    stdin_path = os.path.join(workdir, ".stdin")
    with open(stdin_path, "w") as f:
        f.write(run.get("stdin") or "")
    stdin_fd = os.open(stdin_path, os.O_RDONLY)
    os.unlink(stdin_path)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(run, jobdir, (stdin_fd, out_w, err_w, st_w), nonce, memory_mb, drop_uid)
    for fd in (stdin_fd, out_w, err_w, st_w):
        os.close(fd)
    bufs = {out_r: bytearray(), err_r: bytearray(), st_r: bytearray()}
    open_fds = set(bufs)
    pidfd = _pidfd(pid)
    deadline = start + float(run["timeout"])
    state, wait_status = "exited", None
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            _drain(open_fds, bufs, err_r, st_r)
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = "timeout"
            break
        watch = list(open_fds) + ([pidfd] if pidfd is not None else [])
        # without a pidfd, poll: the pipes may stay open in grandchildren after exit
        wait = remaining if pidfd is not None else min(remaining, 0.01)
        ready = select.select(watch, [], [], wait)[0] if watch else []
        if not watch:
            time.sleep(min(remaining, 0.005))
        for fd in ready:
            if fd == pidfd:
                continue
            data = os.read(fd, CHUNK)
            if not data:
                open_fds.discard(fd)
            else:
                _append(bufs, fd, data, err_r, st_r)
        if len(bufs[out_r]) > max_output:
            state = "output_limit"
            break
    if pidfd is not None:
        os.close(pidfd)
    seconds = time.monotonic() - start
    clean = _cleanup(pid, mode)
    if state != "exited":
        try:
            _, wait_status = os.waitpid(pid, 0)
        except ChildProcessError:
            wait_status = None
    for fd in bufs:
        os.close(fd)
    exit_code = sig = None
    if wait_status is not None and state == "exited":
        if os.WIFEXITED(wait_status):
            exit_code = os.WEXITSTATUS(wait_status)
        elif os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
    completed, error = False, None
    for line in bytes(bufs[st_r]).decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("done") == nonce:
            completed = True
        elif isinstance(msg, dict) and error is None and "type" in msg:
            error = {k: str(msg.get(k, ""))[:1000] for k in ("type", "message", "phase")}
    result = {
        "status": state,
        "exit_code": exit_code,
        "signal": sig,
        "completed": completed and exit_code == 0,
        "error": error,
        "stdout": bytes(bufs[out_r][:max_output]).decode("utf-8", "replace"),
        "stderr": bytes(bufs[err_r][-STDERR_CAP:]).decode("utf-8", "replace"),
        "seconds": round(seconds, 6),
    }
    return result, clean


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _append(bufs, fd, data, err_r, st_r):
    buf = bufs[fd]
    buf += data
    if fd == err_r and len(buf) > 2 * STDERR_CAP:
        del buf[: len(buf) - STDERR_CAP]
    elif fd == st_r and len(buf) > 65536:
        del buf[65536:]


def _drain(open_fds, bufs, err_r, st_r):
    """After the child exited: take what is already in the pipes, never wait for more."""
    while open_fds:
        ready = select.select(list(open_fds), [], [], 0)[0]
        if not ready:
            return
        for fd in ready:
            data = os.read(fd, CHUNK)
            if not data:
                open_fds.discard(fd)
            else:
                _append(bufs, fd, data, err_r, st_r)
                if len(bufs[fd]) > 64 * 1024 * 1024:
                    return


def main():
    mode, workdir = sys.argv[1], sys.argv[2]
    drop_uid = int(sys.argv[3]) if len(sys.argv) > 3 and os.getuid() == 0 else None
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    _prctl_dumpable(0)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if drop_uid is not None:
        os.chmod(workdir, 0o777)

    def send(obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(proto_out, data) :]

    send({"ready": True, "python": sys.version.split()[0], "pid": os.getpid()})
    for line in proto_in:
        job = json.loads(line)
        results, clean = [], True
        for run in job["runs"]:
            res, ok = _execute(
                run,
                workdir,
                secrets.token_hex(16),
                int(job.get("max_output", 1 << 20)),
                int(job.get("memory_mb", 512)),
                mode,
                drop_uid,
            )
            results.append(res)
            clean = clean and ok
        send({"id": job["id"], "results": results, "clean": clean})


if __name__ == "__main__":
    main()
