"""Hostile programs in the docker sandbox: each must end as a contained fail, error or
timeout, and afterwards the host and the pool must be healthy (the next program runs
normally, the container holds no leftover process, no worker was lost)."""

import os
import time
import uuid

import pytest

from rewardkit_code.sandbox import AssertTest

pytestmark = pytest.mark.docker

HOST_SECRET = f"rk-secret-{uuid.uuid4().hex}"
HOST_FILE = f"/tmp/rewardkit-host-{uuid.uuid4().hex}.txt"

# (name, program, test, allowed outcomes)
CASES = [
    (
        "fork_bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "",
        {"timeout"},
    ),
    ("infinite_loop", "while True:\n    pass\n", "", {"timeout"}),
    (
        "memory_bomb",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n",
        "",
        # stopped either way: on a loaded host, filling the memory limit can take longer
        # than the 2 s timeout (seen with the suite beside a training run)
        {"error", "timeout"},
    ),
    ("one_huge_allocation", "x = bytearray(8 * 2**30)\n", "", {"error"}),
    ("huge_output", "while True:\n    print('x' * 100_000)\n", "", {"error"}),
    (
        "network",
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1).close()\nup = True\n",
        "assert up",
        {"error"},
    ),
    ("dns", "import socket\nsocket.getaddrinfo('pypi.org', 443)\n", "", {"error"}),
    (
        "read_host_file",
        f"data = open({HOST_FILE!r}).read()\n",
        f"assert {HOST_SECRET!r} in data",
        {"error"},
    ),
    (
        "read_host_repo",
        "import os\nfound = os.path.exists('/work/main/pyproject.toml') or "
        "os.path.exists('/var/run/docker.sock')\n",
        "assert found",
        {"fail"},
    ),
    ("write_outside_workdir", "open('/etc/pwned', 'w').write('x')\n", "", {"error"}),
    ("write_interpreter", "import sys\nopen(sys.executable, 'ab').write(b'x')\n", "", {"error"}),
    (
        "kill_parent",
        "import os, signal\nfor sig in (signal.SIGKILL, signal.SIGTERM):\n"
        "    try:\n        os.kill(os.getppid(), sig)\n        os.kill(1, sig)\n    except OSError:\n"
        "        pass\nalive = False\n",
        "assert alive",
        {"fail"},
    ),
    (
        "kill_everything",
        "import os\nos.kill(-1, 9)\nimport time\ntime.sleep(0.2)\n",
        "assert False",
        {"error", "fail"},
    ),
    ("kill_host_pid", f"import os\nos.kill({os.getpid()}, 9)\n", "", {"error"}),
    ("sleep_past_timeout", "import time\ntime.sleep(60)\n", "", {"timeout"}),
    (
        "background_daemon",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n        open('/work/daemon-was-here', 'w').write('x')\n"
        "        time.sleep(60)\n    os._exit(0)\nvalue = 1\n",
        "assert value == 2",
        {"fail"},
    ),
    (
        "env_secrets",
        "import os\nenv = dict(os.environ)\n"
        "proc = open('/proc/1/environ', 'rb').read().decode(errors='replace') "
        "if os.access('/proc/1/environ', os.R_OK) else ''\n",
        f"assert {HOST_SECRET!r} in str(env) + proc",
        {"fail"},
    ),
    (
        "ptrace_runner",
        "import ctypes\nlibc = ctypes.CDLL(None)\nrc = libc.ptrace(16, 1, 0, 0)\n",
        "assert rc == 0, rc",
        {"fail"},
    ),
    (
        "chmod_workdir",
        "import os\nos.makedirs('a/b')\nos.chmod('a/b', 0)\nos.chmod('a', 0)\nos.chmod('.', 0)\n",
        "assert False",
        {"fail"},
    ),
]

HEALTH = (
    "import os\n"
    "def cmdline(pid):\n"
    "    return open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "procs = [p for p in os.listdir('/proc') if p.isdigit()]\n"
    "# besides the runner (PID 1), the template and this program: at most the judge kept\n"
    "# from earlier programs, a fork of the runner (same command line)\n"
    "others = [int(p) for p in procs if int(p) not in (1, os.getpid(), os.getppid())]\n"
    "judges = [p for p in others if cmdline(p) == cmdline(1)]\n"
    "daemon_trace = os.path.exists('/work/daemon-was-here')\n"
    "here = os.listdir('.') + os.listdir('/tmp')\n"
    "def f(x):\n    return x * 2\n"
)
HEALTH_TESTS = [
    AssertTest("assert f(21) == 42"),
    AssertTest("assert len(judges) == len(others) <= 1, (procs, others)"),
    AssertTest("assert not daemon_trace"),
    AssertTest("assert here == [], here"),
]


@pytest.fixture(scope="module", autouse=True)
def host_secret():
    os.environ["REWARDKIT_TEST_SECRET"] = HOST_SECRET
    with open(HOST_FILE, "w") as f:
        f.write(HOST_SECRET)
    yield
    os.environ.pop("REWARDKIT_TEST_SECRET", None)
    os.unlink(HOST_FILE)


@pytest.mark.parametrize("name,program,test,allowed", CASES, ids=[c[0] for c in CASES])
def test_hostile_program_is_contained(docker_sandbox, name, program, test, allowed):
    box = docker_sandbox
    restarts = box.restarts
    start = time.monotonic()
    out = box.run(program, [AssertTest(test or "pass")], timeout=2.0)[0]
    assert out.status in allowed, out
    assert time.monotonic() - start < 15
    if name == "background_daemon":
        time.sleep(0.6)  # longer than the daemon's delay: it would have written by now
    # the host: still here, its files untouched
    assert not os.path.exists("/etc/pwned")
    assert open(HOST_FILE).read() == HOST_SECRET
    # the pool: every slot still answers and runs a normal program in a clean container
    for _ in range(box.pool_size):
        health = box.run(HEALTH, HEALTH_TESTS, timeout=3.0)
        assert [o.status for o in health] == ["pass"] * 4, health
    assert box.restarts == restarts, "a worker had to be replaced"
    for w in box._workers:
        w.container.reload()
        assert w.container.status == "running"


def test_broken_container_is_replaced(docker_sandbox):
    box = docker_sandbox
    restarts = box.restarts
    victim = next(iter(box._workers))
    victim.container.kill()  # from outside: the runner dies between jobs
    victim.container.wait(timeout=10)
    for _ in range(box.pool_size + 1):
        assert box.run("x = 1\n", [AssertTest("assert x == 1")])[0].passed
    assert box.restarts == restarts + 1
    assert len(box._workers) == box.pool_size


@pytest.mark.parametrize(
    "attack",
    [
        "os.setpriority(os.PRIO_PROCESS, pid, 19)",
        "os.sched_setaffinity(pid, {sorted(os.sched_getaffinity(pid))[0]})",
        "os.kill(pid, signal.SIGSTOP)",
        "resource.prlimit(pid, resource.RLIMIT_NOFILE, (16, 16))",
        "resource.prlimit(pid, resource.RLIMIT_AS, (64 * 2**20, 64 * 2**20))",
    ],
)
def test_program_cannot_slow_down_later_programs(docker_sandbox, attack):
    """A program may renice, pin, stop or lower the rlimits of the runner, the template and
    the judge kept from earlier programs (same uid): the next program must still run at
    full speed and within its own limits, so the worker or the judge is checked and
    replaced."""
    box = docker_sandbox
    # a first program, so that a judge is kept and the attack can reach it
    assert box.run("x = 1\n", [AssertTest("assert x == 1")])[0].passed
    program = (
        "import os, resource, signal\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit() and int(p) != os.getpid():\n"
        "        pid = int(p)\n"
        "        try:\n"
        f"            {attack}\n"
        "        except OSError:\n"
        "            pass\n"
    )
    # the attacker may hurt its own test (a stopped judge: timeout), not the next program's
    assert box.run(program, [AssertTest("pass")])[0].status in {"pass", "error", "timeout"}
    probe = (
        "import os, resource\n"
        "others = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
        "nice = [os.getpriority(os.PRIO_PROCESS, p) for p in others]\n"
        "cpus = [len(os.sched_getaffinity(p)) for p in others]  # no cpuset: all CPUs\n"
        "states = [open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] for p in others]\n"
        "files = [resource.prlimit(p, resource.RLIMIT_NOFILE)[0] for p in others]\n"
        "memory = [resource.prlimit(p, resource.RLIMIT_AS)[0] for p in others]\n"
        "def f(x):\n    return [x] * 2**16\n"
    )
    for _ in range(box.pool_size + 1):
        out = box.run(
            probe,
            [
                AssertTest("assert nice == [0] * len(nice), nice"),
                AssertTest("assert cpus == [os.cpu_count()] * len(cpus), cpus"),
                AssertTest("assert 'T' not in states, states"),
                AssertTest("assert 16 not in files, files"),
                AssertTest("assert 64 * 2**20 not in memory, memory"),
                # a list crosses to the judge: it has its own memory limit back
                AssertTest("assert len(f(0)) == 2**16"),
            ],
        )
        assert [o.status for o in out] == ["pass"] * 6, out


JUDGES = (
    "import os\n"
    "def cmdline(pid):\n"
    "    return open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "judges = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in "
    "(1, os.getpid(), os.getppid()) and cmdline(p) == cmdline(1)]\n"
)


def test_the_judge_is_kept_across_programs_and_replaced_after_a_timeout(docker_image):
    """One judge serves the assert tests of program after program (forking one per program
    cost more than the tests); a test that times out in it gets a new one."""
    from rewardkit_code.sandbox.docker_backend import DockerSandbox

    def judges_seen(box):
        out = box.run(JUDGES, [AssertTest("assert judges == [], judges")])
        assert out[0].status == "fail", out  # the message names the judge the program saw
        return out[0].message

    with DockerSandbox(image=docker_image, pool_size=1, timeout=1.0) as box:
        assert box.run("x = 1\n", [AssertTest("assert x == 1")])[0].passed
        first = judges_seen(box)
        assert first == judges_seen(box)  # the same judge, program after program
        # a test that hangs in the judge: it is killed, the next test gets a new judge
        slow = box.run("def f():\n    return 1\n", [AssertTest("while True:\n    f()")])
        assert slow[0].status == "timeout"
        assert box.run(JUDGES, [AssertTest("assert judges == [], judges")])[0].passed  # killed
        assert box.run("x = 1\n", [AssertTest("assert x == 1")])[0].passed
        after = judges_seen(box)
        assert after != first and after.startswith("AssertionError: [")
        assert after == judges_seen(box)
