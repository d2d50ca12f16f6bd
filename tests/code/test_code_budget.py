"""A program's time budget, the grace after a timeout, the private /tmp, one load per
program, and which results the cache may keep."""

import pytest

from rewardkit_code.execution import CodeExecutor
from rewardkit_code.sandbox import AssertTest, TestOutcome

HANG = "def f(x):\n    while True:\n        pass\n"
SLOW = "import time\ndef f(x):\n    time.sleep(0.25)\n    return x\n"


def _hang_costs_about_one_timeout(box):
    before = box.skipped_tests
    timeout = 1.0
    outs = box.run(HANG, [AssertTest(f"assert f({i}) == {i}") for i in range(8)], timeout=timeout)
    assert [o.status for o in outs] == ["timeout"] * 8
    # the first test waits out the timeout, the second the grace (0.1 x timeout), the rest
    # are not run at all: 1.1 timeouts in all, as the runner measured them
    assert [o.skipped for o in outs] == [False, False] + [True] * 6
    assert sum(o.seconds for o in outs) <= 1.2 * timeout
    assert outs[1].seconds == pytest.approx(box.grace_after_timeout * timeout, abs=0.05)
    assert box.skipped_tests == before + 6
    assert "budget" in outs[2].message


def _budget_is_spent_by_slow_tests(box):
    # 0.25 s per test, budget 1 s: three tests run, the fourth runs out of time, the rest skip
    outs = box.run(SLOW, [AssertTest(f"assert f({i}) == {i}") for i in range(6)], 2.0, 1.0)
    assert [o.status for o in outs[:3]] == ["pass"] * 3
    assert outs[3].status == "timeout" and not outs[3].skipped
    assert all(o.status == "timeout" and o.skipped for o in outs[4:])


def _one_load_per_program(box):
    # the program's top level runs once; every test sees a fresh copy of the loaded state
    program = "import os\nLOADS = [os.getpid()]\nseen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)\n"
    tests = [
        AssertTest("assert f(1) == 1"),
        AssertTest("assert f(2) == 1"),
        AssertTest("assert len(LOADS) == 1"),
    ]
    assert [o.status for o in box.run(program, tests)] == ["pass"] * 3


def test_local_budget_and_grace(local_sandbox):
    _hang_costs_about_one_timeout(local_sandbox)
    _budget_is_spent_by_slow_tests(local_sandbox)
    _one_load_per_program(local_sandbox)


@pytest.mark.docker
def test_docker_budget_and_grace(docker_sandbox):
    _hang_costs_about_one_timeout(docker_sandbox)
    _budget_is_spent_by_slow_tests(docker_sandbox)
    _one_load_per_program(docker_sandbox)


def test_budget_settings_are_checked():
    from rewardkit_code.sandbox import make_sandbox

    with pytest.raises(ValueError, match="program_budget"):
        make_sandbox("local", program_budget=0)
    with pytest.raises(ValueError, match="grace_after_timeout"):
        make_sandbox("local", grace_after_timeout=2)
    with pytest.raises(ValueError, match="program_budget"):
        CodeExecutor(backend="local", program_budget=-1)
    assert CodeExecutor(backend="local", timeout=3.0).program_budget == 6.0


WRITE_TMP = (
    "import os, tempfile\n"
    "open('/tmp/marker', 'w').write('x')\n"
    "with tempfile.NamedTemporaryFile('w', delete=False) as f:\n"
    "    f.write('y')\n"
    "where = f.name\n"
)
READ_TMP = "import os\nleft = sorted(os.listdir('/tmp'))\n"


@pytest.mark.docker
def test_docker_tmp_is_writable_private_and_limited(docker_sandbox):
    box = docker_sandbox
    wrote = box.run(WRITE_TMP, [AssertTest("assert where.startswith('/tmp/')")])
    assert wrote[0].passed, wrote
    # the next program, in whichever container, finds /tmp empty
    for _ in range(box.pool_size + 1):
        assert box.run(READ_TMP, [AssertTest("assert left == [], left")])[0].passed
    # size-limited: 64 MB of tmpfs, written in 15 MB files (below the 16 MB file cap)
    fill = "for i in range(8):\n    open(f'/tmp/big{i}', 'wb').write(b'0' * 15 * 2**20)\n"
    assert box.run(fill, [AssertTest("pass")])[0].status == "error"
    assert box.run(READ_TMP, [AssertTest("assert left == [], left")])[0].passed


def test_local_tmpdir_is_private_and_emptied(local_sandbox):
    write = "import tempfile\nd = tempfile.gettempdir()\nopen(d + '/marker', 'w').write('x')\n"
    assert local_sandbox.run(write, [AssertTest("assert 'rewardkit-code-' in d, d")])[0].passed
    read = "import os, tempfile\nleft = os.listdir(tempfile.gettempdir())\n"
    assert local_sandbox.run(read, [AssertTest("assert left == [], left")])[0].passed


class CountingSandbox:
    """A stand-in sandbox that answers from a script and counts what it was asked."""

    def __init__(self, outcomes):
        from rewardkit_code.sandbox.base import Sandbox

        self.outcomes, self.calls = outcomes, 0
        self.cache_size, self._cache = 16, {}
        self._lock = __import__("threading").Lock()
        self.cached = lambda key: Sandbox.cached(self, key)
        self.remember = lambda key, outs: Sandbox.remember(self, key, outs)

    def run_many(self, jobs, timeout=None, budget=None):
        self.calls += len(jobs)
        return [list(self.outcomes) for _ in jobs]


@pytest.mark.parametrize(
    "outcomes,cached",
    [
        ([TestOutcome("pass"), TestOutcome("fail", "AssertionError")], True),
        ([TestOutcome("error", "ValueError: x")], True),
        ([TestOutcome("pass"), TestOutcome("timeout", "exceeded")], False),
        ([TestOutcome("timeout", "not run", skipped=True)], False),
        ([TestOutcome("error", "sandbox failure: lost the container")], False),
    ],
)
def test_only_load_independent_results_are_cached(outcomes, cached):
    box = CountingSandbox(outcomes)
    executor = CodeExecutor(sandbox=box, require_code_block=False)
    row = {"tests": [{"type": "assert", "code": "pass"}] * len(outcomes)}
    for _ in range(2):
        assert executor.outcomes([("x = 1", row)])[0] == outcomes
    assert box.calls == (1 if cached else 2)
    stats = executor.stats()
    assert stats["programs_executed"] == box.calls
    assert stats.get("tests_skipped", 0) == sum(o.skipped for o in outcomes) * box.calls
