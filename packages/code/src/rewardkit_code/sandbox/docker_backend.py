"""The docker backend: a pool of warm, locked-down containers, one runner in each.

Each container runs the runner (runner.py) as its PID 1, started from source with
`python3 -I -c`, so any image with a Python 3.9+ interpreter works (the image
`rewardkit-code sandbox build-image` makes offline, or `python:3.12-slim`). The host talks
to it over the container's attached stdin/stdout (Docker's multiplexed stream), so a
program costs one interpreter start inside the container and a fork per test: no
container start, no `docker exec`.

Every container: no network (`network_mode="none"`), read-only root file system, tmpfs
mounts for the work directory and for /tmp (size-limited, emptied after every program),
memory (no swap), pids and CPU limits, a non-root user, all capabilities dropped,
`no-new-privileges`, nothing from the host environment. Programs cannot signal the runner
(PID 1 of its namespace ignores signals it has no handler for), and after each program
the runner kills every other process of the container.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import time
import uuid
from typing import Any

from rewardkit_code.sandbox.base import (
    Sandbox,
    SandboxError,
    Worker,
    WorkerBroken,
    runner_command,
)

DEFAULT_IMAGE = "python:3.12-slim"
BUILT_IMAGE = "rewardkit-code-sandbox:latest"  # what `sandbox build-image` makes
log = logging.getLogger(__name__)
LABEL = "rewardkit-code.sandbox"
OWNER_LABEL = "rewardkit-code.owner"  # "<host>:<pid>" of the process that started it


def docker_client(timeout: float = 10.0):
    """A docker SDK client for the engine of the environment (DOCKER_HOST or the socket)."""
    import docker

    return docker.from_env(timeout=timeout)


def docker_available() -> tuple[bool, str]:
    """(True, version) if a Docker engine answers, else (False, the reason)."""
    try:
        client = docker_client(timeout=5.0)
        client.ping()
        return True, str(client.version().get("Version", "?"))
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable engine
        return False, f"{type(exc).__name__}: {exc}"


def resolve_image(client, image: str | None) -> str:
    """The image to use: the one asked for (argument, else $REWARDKIT_CODE_IMAGE); else the
    offline image of `rewardkit-code sandbox build-image` when it exists; else
    python:3.12-slim, pulled if it is not present."""
    import docker.errors

    asked = image or os.environ.get("REWARDKIT_CODE_IMAGE")
    if asked is None:
        try:
            client.images.get(BUILT_IMAGE)
            return BUILT_IMAGE
        except docker.errors.ImageNotFound:
            asked = DEFAULT_IMAGE
    try:
        client.images.get(asked)
        return asked
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(asked)
        return asked
    except Exception as exc:  # noqa: BLE001
        pull_error = f"{type(exc).__name__}: {exc}"
    raise SandboxError(
        f"sandbox image {asked!r} is not present and could not be pulled ({pull_error}). "
        f"Without a registry, build one from this machine's Python with "
        f"`rewardkit-code sandbox build-image` (tag {BUILT_IMAGE})."
    )


class DockerWorker(Worker):
    """One container with the runner as its main process, talked to over attach."""

    def __init__(self, client, image: str, config: dict[str, Any], startup_timeout: float):
        self.client = client
        self.buf = b""
        self.stderr_tail = b""
        self.container = client.containers.create(image, **config)
        try:
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            self.sock = client.api.attach_socket(self.container.id, params=params)
            self.raw: socket.socket = self.sock._sock
            self.container.start()
            hello = self.readline(time.monotonic() + startup_timeout)
            if b'"ready": true' not in hello:
                raise WorkerBroken(f"unexpected greeting {hello[:200]!r}")
        except Exception as exc:
            logs = self._logs()
            self.kill()
            raise SandboxError(
                f"sandbox container from image {image!r} did not start: {exc}. {logs}"
            ) from exc

    def send(self, data: bytes) -> None:
        try:
            self.raw.sendall(data)
        except OSError as exc:
            raise WorkerBroken(f"cannot write to the container: {exc}") from exc

    def alive(self) -> bool:
        """Between jobs the stream is silent; readable means EOF (the container died)."""
        try:
            if not select.select([self.raw], [], [], 0)[0]:
                return True
            return self.raw.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def readline(self, deadline: float) -> bytes:
        while b"\n" not in self.buf:
            header = self._recv_exact(8, deadline)
            kind, size = struct.unpack(">BxxxL", header)
            payload = self._recv_exact(size, deadline)
            if kind == 2:
                self.stderr_tail = (self.stderr_tail + payload)[-2000:]
            else:
                self.buf += payload
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        data = b""
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken("the container did not answer in time")
            self.raw.settimeout(remaining)
            try:
                chunk = self.raw.recv(n - len(data))
            except TimeoutError:
                continue
            except OSError as exc:
                raise WorkerBroken(f"lost the container stream: {exc}") from exc
            if not chunk:
                tail = self.stderr_tail.decode("utf-8", "replace")[-300:]
                raise WorkerBroken(f"the container closed its stream {tail}".strip())
            data += chunk
        return data

    def _logs(self) -> str:
        try:
            return self.container.logs(tail=20).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return ""

    def kill(self) -> None:
        try:
            self.sock.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


class DockerSandbox(Sandbox):
    """Warm container pool; see the module docstring for the isolation it sets up."""

    backend = "docker"
    isolation = "container: no network, read-only root, tmpfs work dir, cgroup limits, non-root"

    def __init__(
        self,
        image: str | None = None,
        cpus: float = 1.0,
        pids_limit: int = 64,
        tmpfs_mb: int = 64,
        tmp_mb: int = 64,
        user: str = "65534:65534",
        python: str = "python3",
        **settings,
    ):
        super().__init__(**settings)
        if pids_limit < 8:
            raise ValueError(f"pids_limit must be >= 8, got {pids_limit}")
        if tmpfs_mb < 1 or tmp_mb < 1:
            raise ValueError(f"tmpfs_mb and tmp_mb must be >= 1, got {tmpfs_mb}, {tmp_mb}")
        self.client = docker_client()
        self.image = resolve_image(self.client, image)
        self.config = dict(
            command=runner_command(python, "all", "/work", "/tmp"),
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={
                "/work": f"size={tmpfs_mb}m,mode=1777",
                "/tmp": f"size={tmp_mb}m,mode=1777",
            },
            working_dir="/work",
            mem_limit=f"{self.memory_mb + 64}m",
            memswap_limit=f"{self.memory_mb + 64}m",
            pids_limit=pids_limit,
            nano_cpus=int(cpus * 1e9),
            user=user,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            environment={"HOME": "/work", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
            labels={LABEL: "1", OWNER_LABEL: _owner()},
            detach=True,
        )

        # a run killed by a signal cannot close its pool: its containers are removed here
        reaped = remove_orphaned_containers(self.client)
        if reaped:
            log.info("removed %d sandbox containers of processes that have exited", reaped)

    def _start_worker(self) -> Worker:
        config = dict(self.config, name=f"rewardkit-sbx-{uuid.uuid4().hex[:12]}")
        return DockerWorker(self.client, self.image, config, self.startup_timeout)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_orphaned_containers(client) -> int:
    """Remove this host's sandbox containers whose starting process no longer exists (killed
    by a signal, it could not close its pool). Containers of live processes, of other hosts
    sharing the engine, and unlabelled ones are left alone."""
    host = socket.gethostname()
    removed = 0
    # sparse: no inspect per container, which fails when another pool removes it meanwhile
    for c in client.containers.list(all=True, filters={"label": OWNER_LABEL}, sparse=True):
        labels = c.attrs.get("Labels") or {}
        owner_host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
        if owner_host == host and pid.isdigit() and not _process_exists(int(pid)):
            try:
                c.remove(force=True)
                removed += 1
            except Exception as exc:  # noqa: BLE001 - removed meanwhile by another process
                log.debug("could not remove orphaned container %s: %s", c.name, exc)
    return removed


def remove_stale_containers() -> int:
    """Remove sandbox containers left by processes that died without closing their pool."""
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": LABEL})
    for c in found:
        c.remove(force=True)
    return len(found)
