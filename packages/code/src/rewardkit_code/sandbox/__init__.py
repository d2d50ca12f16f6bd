"""Sandboxed execution of untrusted programs: docker (strong) and local (weak) backends.

`get_sandbox(...)` returns one shared sandbox per distinct configuration, so every
reward of a training step (code.verpo, code.pass_rate, ...) draws on the same pool.
"""

from __future__ import annotations

import atexit
import threading
import warnings
from typing import Any

from rewardkit_code.sandbox.base import (
    AssertTest,
    IOTest,
    Sandbox,
    SandboxError,
    TestCase,
    TestOutcome,
    normalize_output,
    parse_tests,
)

BACKENDS = ("auto", "docker", "local")

_SHARED: dict[tuple, Sandbox] = {}
_SHARED_LOCK = threading.Lock()


def make_sandbox(backend: str = "auto", **settings: Any) -> Sandbox:
    """A new sandbox. `auto` = docker when an engine answers, else local (with a warning)."""
    if backend not in BACKENDS:
        raise ValueError(f"sandbox backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        from rewardkit_code.sandbox.docker_backend import docker_available

        ok, why = docker_available()
        if not ok:
            warnings.warn(
                f"no Docker engine ({why}); running code with the LOCAL backend, which is "
                f"weaker isolation (rlimits and a temp dir only)",
                stacklevel=2,
            )
        backend = "docker" if ok else "local"
    if backend == "docker":
        from rewardkit_code.sandbox.docker_backend import DockerSandbox

        return DockerSandbox(**settings)
    from rewardkit_code.sandbox.local import LocalSandbox

    settings = {k: v for k, v in settings.items() if k not in _DOCKER_ONLY}
    return LocalSandbox(**settings)


_DOCKER_ONLY = {"image", "cpus", "pids_limit", "tmpfs_mb", "tmp_mb", "user"}


def get_sandbox(backend: str = "auto", **settings: Any) -> Sandbox:
    """The shared sandbox for this configuration (created on first use, closed at exit)."""
    key = (backend, tuple(sorted(settings.items())))
    with _SHARED_LOCK:
        box = _SHARED.get(key)
        if box is None or box.closed:
            box = _SHARED[key] = make_sandbox(backend, **settings)
        return box


@atexit.register
def close_shared() -> None:
    """Close every shared sandbox (removes their containers)."""
    with _SHARED_LOCK:
        boxes = list(_SHARED.values())
        _SHARED.clear()
    for box in boxes:
        box.close()


__all__ = [
    "AssertTest",
    "BACKENDS",
    "IOTest",
    "Sandbox",
    "SandboxError",
    "TestCase",
    "TestOutcome",
    "close_shared",
    "get_sandbox",
    "make_sandbox",
    "normalize_output",
    "parse_tests",
]
