"""Tests judged outside the program: plain-value calls between two processes.

An assert test never runs in the program's process, so nothing the program does to its
own interpreter (patched builtins, edited frames, objects with rigged `__eq__`, early
exits, lines forged on a file descriptor) can reach the verdict:

- The program's process loads the program once (`program_main`). It is forked from a
  template (`template_main`), an interpreter started fresh with `python3 -I -c <this
  file>` that never holds a test, so the program's memory holds no test either. For each
  test it forks a copy of the loaded state that answers calls (`serve_calls`); copies
  are forked several at a time, ahead of their tests.
- The judge (`judge`, forked from the runner) runs the test code. Every name the test uses
  but does not define (the function under test, a constant, a helper class) is looked up in
  the program's copy and crosses the channel as
    * a plain value: None, bool, int, float, complex, str, bytes, and lists, tuples, dicts,
      sets and frozensets of them, rebuilt in the judge from JSON with exactly the builtin
      types (a subclass arrives as its plain content, read with the base type's methods);
    * a module, which the judge imports itself;
    * anything else (functions, classes, instances, generators) as a `Remote` reference:
      the judge can call it, read its attributes and iterate it, each over the channel; it
      equals only itself and has no truth value.
  Exceptions raised in the program come back by class name: builtin exception classes are
  raised again as themselves (so `try/except ValueError` in a test works), others as
  `ProgramError`.
- The verdict (pass, fail on AssertionError, error on anything else) is written by the
  judge on a pipe the program never holds. The judge is not dumpable, so a program under
  the same uid can neither trace it nor read its memory.

So the program influences the verdict only through the values it returns, and it never
sees the expected values, which exist only in the judge. Limits: a test cannot pass a
function or an object of its own to the program (plain values and the program's own
references only), and changes the program makes to an argument are not seen by the test.

Standard library only (Python >= 3.9): the runner executes this source to get the judge
and starts the template from it.
"""

import ast
import builtins
import fcntl
import importlib
import json
import os
import resource
import socket
import sys
import traceback

MAX_DEPTH = 64
MODULE_TYPE = type(sys)
BUILTIN_NAMES = frozenset(dir(builtins))
MAX_COPIES = 16  # copies of a loaded program forked at once (each waits for its test)
FILE_CAP = 16 * 1024 * 1024
HIGH_FD = 100


# -- processes -------------------------------------------------------------------------------


def place_fds(sources):
    """In a forked child: make sources[i] file descriptor i and close everything else."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, HIGH_FD + i) for i, fd in enumerate(sources)]
    for i, fd in enumerate(high):
        os.dup2(fd, i)
    os.closerange(len(sources), 65536)


def isolate(limits):
    """rlimits (address space, CPU seconds, file size, no core) and the sandbox user."""
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    mem = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_CAP, FILE_CAP))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    drop_uid(limits.get("drop_uid"))


def drop_uid(uid):
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None).prctl
    except Exception:
        return None


_PRCTL = _load_prctl()  # once: importing ctypes in every judge would cost ~20 ms


def set_dumpable(value):
    """PR_SET_DUMPABLE (4): 0 keeps processes of the same uid from tracing this one or
    reading its memory and file descriptors through /proc (setuid resets it: call after)."""
    if _PRCTL is not None:
        _PRCTL(4, value, 0, 0, 0)


class ProgramError(Exception):
    """An exception of the program whose class is not a builtin one, or a value that could
    not cross the channel."""


class ProgramGone(Exception):
    """The program's process ended or broke the protocol during a call."""


# -- plain values ------------------------------------------------------------------------


def _plain_content(value):
    """The builtin-typed content of an instance of a builtin subclass, or None."""
    for base, read in (
        (int, int.__int__),
        (float, float.__float__),
        (str, str.__str__),
        (bytes, lambda v: bytes(memoryview(v))),
        (complex, lambda v: complex(complex.real.__get__(v), complex.imag.__get__(v))),
        (list, list.copy),
        (tuple, lambda v: tuple(tuple.__iter__(v))),
        (dict, lambda v: dict(dict.items(v))),
        (set, lambda v: set(set.__iter__(v))),
        (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    ):
        if isinstance(value, base):
            try:
                return (read(value),)
            except Exception:  # isinstance was fooled (a __class__ property): not plain
                return None
    return None


def encode(value, refs=None, depth=0):
    """A JSON-able tree for `value`. Objects that are not plain become {"r": key} entries
    of `refs` (the program side); with refs=None they raise TypeError (the judge side,
    which sends only plain values and the program's own references)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"the value is nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float or kind is str:
        return value
    d = depth + 1
    if kind is list:
        return [encode(v, refs, d) for v in value]
    if kind is tuple:
        return {"t": [encode(v, refs, d) for v in value]}
    if kind is dict:
        return {"d": [[encode(k, refs, d), encode(v, refs, d)] for k, v in value.items()]}
    if kind is set:
        return {"s": [encode(v, refs, d) for v in value]}
    if kind is frozenset:
        return {"f": [encode(v, refs, d) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if kind is MODULE_TYPE:
        return {"m": str(value.__name__)}
    if kind is Remote:
        return {"r": value._ref}
    content = _plain_content(value)
    if content is not None:
        return encode(content[0], refs, depth)
    if refs is None:
        raise TypeError(
            f"the judge cannot pass a {kind.__name__} to the program (plain values only)"
        )
    key = str(id(value))
    refs[key] = value
    return {"r": key}


def decode(tree, resolve, depth=0):
    """The value of an `encode` tree; `resolve(key)` turns {"r": key} into an object."""
    if depth > MAX_DEPTH + 1:
        raise ValueError("the value is nested too deeply")
    kind = type(tree)
    if tree is None or kind is bool or kind is int or kind is float or kind is str:
        return tree
    d = depth + 1
    if kind is list:
        return [decode(v, resolve, d) for v in tree]
    if kind is dict and len(tree) == 1:
        ((tag, body),) = tree.items()
        if tag == "t":
            return tuple(decode(v, resolve, d) for v in body)
        if tag == "d":
            return {decode(k, resolve, d): decode(v, resolve, d) for k, v in body}
        if tag == "s":
            return {decode(v, resolve, d) for v in body}
        if tag == "f":
            return frozenset(decode(v, resolve, d) for v in body)
        if tag == "b":
            return bytes.fromhex(body)
        if tag == "c":
            return complex(float(body[0]), float(body[1]))
        if tag == "m":
            return _module(body)
        if tag == "r":
            return resolve(str(body))
    raise ValueError(f"not an encoded value: {str(tree)[:80]}")


def _module(name):
    if name not in sys.modules and name not in getattr(sys, "stdlib_module_names", ()):
        raise ValueError(f"the program named a module that is not in the standard library: {name}")
    return importlib.import_module(name)


# -- the program side ----------------------------------------------------------------------


def _exception_reply(exc):
    name = type(exc).__name__
    try:
        message = str(exc)[:1000]
    except BaseException:
        message = ""
    return {"raise": [name, message, type(exc).__module__ == "builtins"]}


def _handle(request, namespace, refs):
    op = request["op"]
    if op == "get":
        name = request["name"]
        if name not in namespace:
            return {"missing": True}
        return {"ok": encode(namespace[name], refs)}
    target = refs[request["ref"]]
    if op == "call":
        resolve = refs.__getitem__
        args = decode(request["args"], resolve)
        kwargs = decode(request["kwargs"], resolve)
        return {"ok": encode(target(*args, **kwargs), refs)}
    if op == "getattr":
        return {"ok": encode(getattr(target, request["name"]), refs)}
    if op == "iter":
        return {"ok": encode(iter(target), refs)}
    if op == "next":
        return {"ok": encode(next(target), refs)}
    raise ValueError(f"unknown request {op!r}")


def serve_calls(sock, namespace):
    """In a forked copy of the loaded program: answer the judge's requests until it hangs up."""
    refs = {}
    stream = sock.makefile("rwb")
    dumps, loads = json.dumps, json.loads  # bound before the program can reach them here
    for line in stream:
        try:
            reply = _handle(loads(line), namespace, refs)
        except BaseException as exc:  # the program's exception, sent back by name
            reply = _exception_reply(exc)
        try:
            data = dumps(reply)
        except BaseException as exc:
            data = dumps(_exception_reply(ProgramError(f"could not send the value: {exc}")))
        stream.write(data.encode() + b"\n")
        stream.flush()
    os._exit(0)


def _send(ctrl, message, seq):
    ctrl.send(json.dumps(dict(message, seq=seq)).encode())


def template_main():
    """The template: a fresh interpreter (fd 3: the runner's control socket) that forks one
    program process per job. It never receives a test or a program, and it is not
    dumpable, so programs of the same uid can kill it (the runner starts another) but not
    change it."""
    drop_uid(json.loads(sys.argv[1]).get("drop_uid"))
    set_dumpable(0)
    ctrl = socket.socket(fileno=3)
    _send(ctrl, {"ready": True}, 0)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctrl, 65536, 4)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)
        message = json.loads(data)
        if message["op"] == "reap":  # how an ended program process ended
            try:
                status = os.waitpid(message["pid"], 0)[1]
            except ChildProcessError:
                status = None
            _send(ctrl, {"status": status}, message["seq"])
            continue
        pid = os.fork()
        if pid == 0:
            ctrl.close()
            _start_program(message, fds)
        for fd in fds:
            os.close(fd)
        _send(ctrl, {"pid": pid}, message["seq"])


def _start_program(message, fds):
    """In the template's child: isolate, then become the program's process. Never returns."""
    try:
        os.setsid()
        place_fds(fds)  # 0: the program's source, 1: stdout, 2: stderr, 3: control
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer takes the program, not the runner
        except OSError:
            pass
        isolate(message["limits"])
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        sys.argv = ["solution.py"]
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
    except BaseException as exc:
        os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
        os._exit(70)
    program_main()
    os._exit(0)


def _run_io(code, fds):
    """In a forked child: run the program as __main__ on the test's stdin. Never returns."""
    stdin_fd, out_fd, err_fd = fds
    os.dup2(stdin_fd, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    for fd in fds:
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    status = 0
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as exc:
        if exc.code is None or exc.code == 0:
            status = 0
        elif isinstance(exc.code, int):
            status = exc.code & 0xFF or 1
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status)


def program_main():
    """The program's process. fd 0: the program's source; fd 3: the runner's control
    socket (SOCK_SEQPACKET: one JSON message per packet, file descriptors alongside)."""
    source = sys.stdin.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    ctrl = socket.socket(fileno=3)
    try:
        code = compile(source, "solution.py", "exec")
    except BaseException as exc:
        _send(ctrl, {"error": _exception_reply(exc)["raise"]}, 0)
        os._exit(1)
    _send(ctrl, {"ready": True}, 0)
    namespace = None
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctrl, 65536, MAX_COPIES)
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)
        _reap()
        message = json.loads(data)
        op, seq = message["op"], message["seq"]
        if op == "load":
            namespace = {"__name__": "__main__", "__builtins__": builtins}
            try:
                exec(code, namespace)
            except BaseException as exc:
                traceback.print_exception(type(exc), exc, exc.__traceback__)
                _send(ctrl, {"error": _exception_reply(exc)["raise"]}, seq)
                continue
            _send(ctrl, {"loaded": True}, seq)
            continue
        if op == "io":
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)
                ctrl.close()
                _run_io(code, fds)
            for fd in fds:
                os.close(fd)
            _send(ctrl, {"pid": pid}, seq)
            _, status = os.waitpid(pid, 0)
            _send(ctrl, {"exit": status}, seq)
            continue
        pids = []  # "copies": one forked copy of the loaded program per socket
        for i, fd in enumerate(fds):
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)
                ctrl.close()
                for other in fds[:i] + fds[i + 1 :]:
                    os.close(other)
                serve_calls(socket.socket(fileno=fd), namespace)
            pids.append(pid)
        for fd in fds:
            os.close(fd)
        _send(ctrl, {"pids": pids}, seq)


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# -- the judge side ------------------------------------------------------------------------


class Channel:
    """The judge's end of one test's connection to the program's copy."""

    def __init__(self, sock, max_bytes):
        self.sock = sock
        self.stream = sock.makefile("rwb")
        self.max_bytes = max_bytes

    def close(self):
        try:
            self.stream.close()
            self.sock.close()
        except OSError:
            pass

    def request(self, message):
        self.stream.write(json.dumps(message).encode() + b"\n")
        self.stream.flush()
        line = self.stream.readline(self.max_bytes + 1)
        if not line.endswith(b"\n"):
            if len(line) > self.max_bytes:
                raise ProgramGone(f"the program's answer exceeded {self.max_bytes} bytes")
            raise ProgramGone("the program's process ended during a call")
        try:
            reply = json.loads(line)
            if "ok" in reply:
                return decode(reply["ok"], self._remote)
            if "missing" in reply:
                raise NameError(f"name {message['name']!r} is not defined by the program")
            name, text, is_builtin = reply["raise"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProgramGone(f"unreadable answer from the program: {exc}") from None
        cls = getattr(builtins, str(name), None) if is_builtin else None
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ProgramError(f"{name}: {text}" if text else str(name))
        try:
            exc = cls(text)
        except Exception:
            exc = ProgramError(f"{name}: {text}")
        exc.rewardkit_from_program = True
        raise exc

    def _remote(self, key):
        return Remote(self, key)


class Remote:
    """An object that stays in the program's process: calls, attributes and iteration go
    over the channel; it equals only itself and has no truth value the judge could trust."""

    __slots__ = ("_channel", "_ref")

    def __init__(self, channel, ref):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_ref", ref)

    def __call__(self, *args, **kwargs):
        return self._channel.request(
            {"op": "call", "ref": self._ref, "args": encode(list(args)), "kwargs": encode(kwargs)}
        )

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._channel.request({"op": "getattr", "ref": self._ref, "name": name})

    def __iter__(self):
        return self._channel.request({"op": "iter", "ref": self._ref})

    def __next__(self):
        return self._channel.request({"op": "next", "ref": self._ref})

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return hash(self._ref)

    def __bool__(self):
        raise TypeError("an object of the program has no truth value the judge can trust")

    def __repr__(self):
        return f"<object {self._ref} of the program>"


def free_names(tree):
    """Names the test reads but never binds itself and that are not builtins: those come
    from the program. (Scopes are not told apart: a name bound anywhere in the test is
    the test's own.)"""
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return sorted(read - bound - BUILTIN_NAMES)


def judge(test_code, sock, max_bytes):
    """Run one test against the program's copy behind `sock`; returns (status, message)."""
    try:
        tree = ast.parse(test_code, "test.py")
        code = compile(tree, "test.py", "exec")
    except SyntaxError as exc:
        return "error", f"the test does not compile: {exc}"
    channel = Channel(sock, max_bytes)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        return _run_test(code, tree, channel, namespace)
    finally:
        channel.close()


def _run_test(code, tree, channel, namespace):
    try:
        for name in free_names(tree):
            try:
                namespace[name] = channel.request({"op": "get", "name": name})
            except NameError:
                pass  # the test fails with NameError if it really uses the name
        exec(code, namespace)
    except AssertionError as exc:
        return "fail", _describe(exc)
    except ProgramGone as exc:
        return "error", str(exc)
    except BaseException as exc:
        where = " (raised in the program)" if getattr(exc, "rewardkit_from_program", 0) else ""
        return "error", _describe(exc) + where
    return "pass", ""


def judge_main(limits, max_bytes, cwd):
    """A judge forked from the runner (fd 3: its control socket): isolate, then for each
    message {"code": test code} with the socket to a fresh copy of the program, judge the
    test and answer {"status", "message"}; answer {"ping": 1} with {"pong": 1}. The runner
    keeps it for the tests of later programs. Never returns."""
    ctrl = socket.socket(fileno=3)
    try:
        isolate(limits)
        set_dumpable(0)
    except BaseException as exc:
        ctrl.send(json.dumps({"status": "error", "message": f"judge: {exc!r}"}).encode())
        os._exit(1)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctrl, 1 << 24, 1)
        except OSError:
            os._exit(0)
        if data and not fds and json.loads(data).get("ping") == 1:
            ctrl.send(b'{"pong": 1}')
            continue
        if not data or len(fds) != 1:
            os._exit(0)
        try:
            os.chdir(cwd)  # a test may read files the program wrote
        except OSError:  # the program made its directory unreadable
            os.chdir("/")
        try:
            status, message = judge(
                json.loads(data)["code"], socket.socket(fileno=fds[0]), max_bytes
            )
            verdict = {"status": status, "message": message[:1000]}
        except BaseException as exc:
            verdict = {"status": "error", "message": f"judge: {exc!r}"}
        ctrl.send(json.dumps(verdict).encode())


def _describe(exc):
    text = str(exc)
    kind = type(exc).__name__
    if isinstance(exc, ProgramError):
        return text
    return f"{kind}: {text}" if text else kind


if __name__ == "__main__":
    template_main()
