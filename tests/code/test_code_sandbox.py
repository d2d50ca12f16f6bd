"""Per-test outcomes of both backends: pass, fail, timeout, error, stdin/stdout tests."""

import pytest

from rewardkit_code.sandbox import AssertTest, IOTest, make_sandbox, normalize_output, parse_tests
from rewardkit_code.sandbox.base import classify

PROGRAM = """import os, sys
def f(x):
    if x == "exit":
        os._exit(0)
    if x == "sysexit":
        sys.exit(0)
    if x == "print":
        print("x" * 3_000_000)
    if x == "loop":
        while True:
            pass
    return x + 1
"""
CASES = [
    (AssertTest("assert f(1) == 2"), "pass", ""),
    (AssertTest("assert f(1) == 3, 'off by one'"), "fail", "AssertionError: off by one"),
    (AssertTest("f(None)"), "error", "TypeError"),
    (AssertTest("f('exit')"), "error", "the program's process ended during a call"),
    (AssertTest("f('sysexit')"), "error", "SystemExit"),
    (AssertTest("import os; os._exit(0)"), "error", "ended without a verdict"),
    (AssertTest("import sys; sys.exit(0)"), "error", "SystemExit"),
    (AssertTest("raise SyntaxError('x')"), "error", "SyntaxError"),
    (AssertTest("f('print')"), "error", "output exceeded"),
    (AssertTest("assert f(2) == 3"), "pass", ""),  # the copy that printed is gone; a fresh one
    (AssertTest("f('loop')"), "timeout", "time limit"),  # last: later tests share a short grace
]


def _check(box):
    # a generous program budget: on a loaded machine 11 tests could use up the default (2 s)
    outcomes = box.run(PROGRAM, [c[0] for c in CASES], timeout=1.0, budget=30.0)
    for (_, status, text), out in zip(CASES, outcomes, strict=True):
        assert out.status == status, (status, out)
        assert text in out.message
    assert outcomes[-1].seconds == pytest.approx(1.0, abs=0.5)


def _io(box):
    prog = "a, b = map(int, input().split())\nprint(a + b)\nprint('done')\n"
    outs = box.run(
        prog,
        [
            IOTest("1 2\n", "3\ndone"),
            IOTest("2 2", "  5 \n done  \n\n"),
            IOTest("x y", "0"),
            IOTest("4 5", "9   \n\ndone"),
        ],
    )
    assert [o.status for o in outs] == ["pass", "fail", "error", "fail"]
    assert "wrong output" in outs[1].message and "ValueError" in outs[2].message
    # a program that calls sys.exit(0) at the end still passes an io test
    assert box.run("print(7)\nraise SystemExit(0)\n", [IOTest("", "7")])[0].passed


def test_local_backend_outcomes(local_sandbox):
    _check(local_sandbox)
    _io(local_sandbox)


@pytest.mark.docker
def test_docker_backend_outcomes(docker_sandbox):
    _check(docker_sandbox)
    _io(docker_sandbox)


@pytest.mark.docker
def test_docker_runs_concurrently_and_in_order(docker_sandbox):
    jobs = [
        (
            f"def f():\n    return {i}\n",
            [AssertTest(f"assert f() == {i}"), AssertTest("assert f() == -1")],
        )
        for i in range(12)
    ]
    results = docker_sandbox.run_many(jobs)
    assert [[o.status for o in r] for r in results] == [["pass", "fail"]] * 12


@pytest.mark.docker
def test_docker_isolation_settings(docker_sandbox):
    c = next(iter(docker_sandbox._workers)).container
    c.reload()
    host = c.attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and host["PidsLimit"] == 64
    assert host["Memory"] == host["MemorySwap"] == (256 + 64) * 1024 * 1024
    assert "no-new-privileges" in host["SecurityOpt"]
    assert c.attrs["Config"]["User"] == "65534:65534"
    probe = "import os\nuid = os.getuid()\n"
    assert docker_sandbox.run(probe, [AssertTest("assert uid == 65534, uid")])[0].passed


def test_bad_tests_and_settings_are_named():
    with pytest.raises(ValueError, match=r"tests\[1\] is not a test"):
        parse_tests([{"type": "assert", "code": "pass"}, {"type": "io", "input": "1"}])
    with pytest.raises(ValueError, match="non-empty list"):
        parse_tests([])
    with pytest.raises(ValueError, match="backend"):
        make_sandbox("firecracker")
    with pytest.raises(ValueError, match="pool_size"):
        make_sandbox("local", pool_size=0)


def test_normalisation_and_classification():
    assert normalize_output("  1   2 \n\n3\t\n\n") == ["1 2", "", "3"]
    io = IOTest("", "1  2\n")
    ran = {"status": "completed", "message": "", "seconds": 0.1, "stdout": "1 2"}
    assert classify(io, ran, 10).status == "pass"
    assert classify(io, dict(ran, stdout="1 3"), 10).status == "fail"
    # only an io test is compared here; a runner that answers otherwise is a sandbox failure
    assert classify(AssertTest("x"), ran, 10).status == "error"
    assert classify(io, {"status": "pass", "message": ""}, 10).status == "error"
    skipped = classify(AssertTest("x"), {"status": "skipped", "message": "not run"}, 10)
    assert skipped.status == "timeout" and skipped.skipped
    assert classify(AssertTest("x"), {"status": "weird"}, 10).message.startswith("sandbox failure")


def test_local_backend_basic_containment(local_sandbox, monkeypatch):
    # weaker isolation, but: no inherited environment, its own temp dir, killed group
    monkeypatch.setenv("REWARDKIT_TEST_SECRET", "local-secret-123")
    prog = "import os\nenv = str(dict(os.environ))\ncwd = os.getcwd()\n"
    outs = local_sandbox.run(
        prog,
        [
            AssertTest("assert 'local-secret-123' not in env, env"),
            AssertTest("assert cwd.startswith('/tmp/rewardkit-code-'), cwd"),
        ],
    )
    assert [o.status for o in outs] == ["pass", "pass"]
    spawn = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "open('/tmp/rk-local-child.pid', 'w').write(str(p.pid))\n"
    )
    assert local_sandbox.run(spawn, [AssertTest("pass")])[0].passed
    pid = int(open("/tmp/rk-local-child.pid").read())
    import os
    import time

    time.sleep(0.2)
    alive = (
        os.path.exists(f"/proc/{pid}") and "Z" not in open(f"/proc/{pid}/stat").read().split()[2]
    )
    assert not alive, "the background child outlived the run"
    assert local_sandbox.run("x = 1", [AssertTest("assert x == 1")])[0].passed


def test_shared_sandbox_per_configuration():
    from rewardkit_code.sandbox import get_sandbox

    a = get_sandbox("local", pool_size=1, memory_mb=256)
    assert get_sandbox("local", pool_size=1, memory_mb=256) is a
    assert get_sandbox("local", pool_size=1, memory_mb=300) is not a
    a.close()
    assert get_sandbox("local", pool_size=1, memory_mb=256) is not a  # a closed one is replaced


@pytest.mark.docker
def test_docker_image_resolution(docker_image, monkeypatch):
    import docker.errors

    from rewardkit_code.sandbox import SandboxError
    from rewardkit_code.sandbox.docker_backend import (
        BUILT_IMAGE,
        DEFAULT_IMAGE,
        docker_client,
        resolve_image,
    )

    client = docker_client()
    with pytest.raises(SandboxError, match="build-image"):
        resolve_image(client, "rewardkit-no-such-image:404")
    monkeypatch.delenv("REWARDKIT_CODE_IMAGE", raising=False)

    def no_pull(*args, **kwargs):
        raise AssertionError("the offline image exists: nothing should be pulled")

    monkeypatch.setattr(client.images, "pull", no_pull)
    client.images.get(BUILT_IMAGE)  # the fixture made sure it exists
    assert resolve_image(client, None) == BUILT_IMAGE  # the default, without a pull or warning
    monkeypatch.setenv("REWARDKIT_CODE_IMAGE", DEFAULT_IMAGE)
    try:
        client.images.get(DEFAULT_IMAGE)
        assert resolve_image(client, None) == DEFAULT_IMAGE
    except docker.errors.ImageNotFound:  # asked for explicitly, absent, not pullable: named
        with pytest.raises(SandboxError, match="could not be pulled"):
            resolve_image(client, None)
    monkeypatch.setenv("REWARDKIT_CODE_IMAGE", docker_image)
    assert resolve_image(client, None) == docker_image


@pytest.mark.docker
def test_auto_backend_picks_docker(docker_image):
    with make_sandbox("auto", pool_size=1, image=docker_image) as box:
        assert box.backend == "docker"
        assert box.run("x = 2", [AssertTest("assert x == 2")])[0].passed


@pytest.mark.docker
def test_containers_of_a_killed_process_are_removed_by_the_next_pool(docker_image):
    """A run killed by a signal cannot close its pool; the next pool on the host removes its
    containers, and leaves those of live processes alone."""
    import socket
    import subprocess
    import sys

    from rewardkit_code.sandbox.docker_backend import OWNER_LABEL, DockerSandbox, docker_client

    script = (
        "import time\n"
        "from rewardkit_code.sandbox import AssertTest, make_sandbox\n"
        f"box = make_sandbox('docker', image={docker_image!r}, pool_size=1)\n"
        "assert box.run('x = 1', [AssertTest('assert x == 1')])[0].passed\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    client = docker_client()

    def containers_of(pid: int) -> list:
        owner = f"{socket.gethostname()}:{pid}"
        label = {"label": f"{OWNER_LABEL}={owner}"}
        return client.containers.list(all=True, filters=label, sparse=True)

    killed = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    alive = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout.readline().strip() == "ready"
        assert alive.stdout.readline().strip() == "ready"
        killed.kill()
        killed.wait()
        assert len(containers_of(killed.pid)) == 1  # SIGKILL: no cleanup ran
        box = DockerSandbox(image=docker_image, pool_size=1)
        box.close()
        assert containers_of(killed.pid) == []
        assert len(containers_of(alive.pid)) == 1
    finally:
        for child in (killed, alive):
            child.kill()
            child.wait()
        DockerSandbox(image=docker_image, pool_size=1).close()  # removes the last one
    assert containers_of(alive.pid) == []
