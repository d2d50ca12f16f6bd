"""math.accuracy: extraction, equivalence, time limits, threads, adversarial input."""

import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.registry import REWARDS
from rewardkit.rewards.base import build_reward
from rewardkit.rewards.scoring import Scorer, WeightedReward
from rewardkit.types import Sample
from rewardkit_math.accuracy import MathAccuracy, gold_text
from rewardkit_math.extract import extract_answer
from rewardkit_math.verify import MathVerifier

# -- extraction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, answer, method",
    [
        ("so \\boxed{1} then \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", "boxed"),  # last box
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),  # escaped set braces do not count
        ("\\boxed{{a}{b}}", "{a}{b}", "boxed"),  # nested braces matched
        ("\\fbox{7}", "7", "boxed"),
        ("\\boxed{3} and later \\boxed{4", "3", "boxed"),  # unclosed last box: the closed one
        ("work\n#### 1,234\n", "1234", "hashes"),
        ("The answer is $42$.", "42", "answer_is"),
        ("the final answer is 3/4", "3/4", "answer_is"),
        ("Answer: 12 apples.\nmore", "12", "answer_is"),  # a unit after a number is cut
        ("The answer is $72$ dollars.", "72", "answer_is"),  # ... and after a math span
        ("The answer is \\(\\frac{1}{2}\\) of the cake", "\\frac{1}{2}", "answer_is"),
        ("The answer is $$-3.5$$", "-3.5", "answer_is"),
        ("The answer is $3$ or $4$.", "$3$ or $4$", "answer_is"),  # not a unit: kept whole
        ("The answer is 5 + 3 = 8", "5 + 3 = 8", "answer_is"),
        ("The answer is 1,000 apples", "1,000", "answer_is"),
        ("#### 5\nThe answer is 6", "5", "hashes"),  # #### beats "the answer is"
    ],
)
def test_extract_answer(text, answer, method):
    found = extract_answer(text)
    assert (found.answer, found.method) == (answer, method)


@pytest.mark.parametrize(
    "text, method",
    [("no answer here", "none"), ("\\boxed{12", "unbalanced_boxed"), ("", "none")],
)
def test_extract_nothing(text, method):
    found = extract_answer(text)
    assert found.answer is None and found.method == method


def test_extract_rejects_non_string():
    with pytest.raises(TypeError, match="needs a str"):
        extract_answer(None)


def test_extract_is_fast_on_many_unclosed_boxes():
    # quadratic brace matching would take minutes here; one pass takes milliseconds
    text = "\\boxed{" * 100_000
    start = time.monotonic()
    assert extract_answer(text).method == "unbalanced_boxed"
    assert time.monotonic() - start < 2.0


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_extract_never_raises(text):
    found = extract_answer(text)
    assert found.answer is None or isinstance(found.answer, str)


# -- equivalence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion, gold, score",
    [
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("\\boxed{50\\%}", "0.5", 1.0),
        ("#### 1,000", "1000", 1.0),
        ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}", 1.0),
        ("\\boxed{(0, 1]}", "(0,1]", 1.0),
        ("The answer is 1+x.", "x+1", 1.0),
        ("The answer is $72$ dollars.", 72, 1.0),  # issue 17: the unit made this a 0
        ("The answer is 72 dollars.", "72", 1.0),
        ("The answer is $72$ dollars.", 73, 0.0),
        ("\\boxed{-4}", "4", 0.0),
        ("\\boxed{3.0001}", "3", 0.0),
        ("\\boxed{7}", 7, 1.0),  # a numeric ground truth
        ("\\boxed{2.5}", 2.5, 1.0),
        # Python powers (reasoning-gym's polynomial answers) are read as LaTeX powers
        ("\\boxed{2*x + x^2}", "x**2 + 2*x", 1.0),
        ("\\boxed{x^{10}}", "x**10", 1.0),
        ("\\boxed{4*(x+1)**(3/2)}", "4*(x + 1)^{3/2}", 1.0),
        # regression: this used to match because math-verify read only the last number
        ("\\boxed{2240*x**5 - 896*x**4 + 3584*x**4}", "2240*x**5 - 896*x**4 + 3584*x**3", 0.0),
    ],
)
def test_accuracy_equivalence(accuracy, completion, gold, score):
    out = accuracy.score_text(completion, gold)
    assert out.score == score, out.info
    assert out.info["reason"] == ("match" if score else "mismatch")


def test_accuracy_failures_give_zero_with_reason(accuracy):
    assert accuracy.score_text("I do not know", "3").info["reason"] == "no_answer"
    assert accuracy.score_text("\\boxed{3", "3").info["reason"] == "unbalanced_boxed"
    assert accuracy.score_text("\\boxed{}", "3").info["reason"] == "empty_answer"
    long = accuracy.score_text("\\boxed{" + "1" * 2000 + "}", "3")
    assert long.score == 0.0 and long.info["reason"] == "too_long"


def test_gold_text_rejects_bad_ground_truth():
    assert gold_text(3) == "3" and gold_text(0.5) == "0.5"
    for bad in (None, True, [1]):
        with pytest.raises(TypeError, match="ground-truth"):
            gold_text(bad)


def test_missing_ground_truth_names_the_sample(accuracy):
    samples = [Sample("q", "\\boxed{1}", meta={"answer": "1"}), Sample("q", "x", group=3)]
    with pytest.raises(KeyError, match="sample 1 \\(group 3\\)"):
        accuracy(samples)


def test_verifier_rejects_bad_options():
    with pytest.raises(ValueError, match="timeout"):
        MathVerifier(timeout=0)
    with pytest.raises(ValueError, match="num_workers"):
        MathVerifier(num_workers=0)


def test_timeout_is_a_zero_and_the_worker_recovers(accuracy):
    fast = MathAccuracy(timeout=1.0, num_workers=1)
    assert fast.score_text("\\boxed{1}", "1").score == 1.0  # worker started (imports take s)
    start = time.monotonic()
    out = fast.score_text("\\boxed{10^{10^{10}}}", "3")  # a power sympy evaluates in C
    elapsed = time.monotonic() - start
    assert out.score == 0.0 and out.info["reason"].startswith("timeout"), out.info
    assert elapsed < 6.0  # the 1 s limit plus process bookkeeping, never a hang
    # a fresh checking process answers; under heavy load its start-up may itself exceed
    # the 1 s limit once or twice, so allow a few tries (a dead worker never answers)
    answers = []
    for _ in range(5):
        answers.append(fast.score_text("\\boxed{3}", "3").score)
        if answers[-1] == 1.0:
            break
    assert answers[-1] == 1.0, answers


def test_from_a_thread_and_from_the_scorer(accuracy):
    # math-verify's own signal timeouts raise outside the main thread; ours must not
    box = []
    t = threading.Thread(target=lambda: box.append(accuracy.score_text("\\boxed{2/4}", "1/2")))
    t.start()
    t.join(timeout=60)
    assert box and box[0].score == 1.0
    samples = [
        Sample("q", "\\boxed{6}", meta={"answer": "6"}),
        Sample("q", "\\boxed{5}", meta={"answer": "6"}),
        Sample("q", "\\boxed{10^{10^{10}}}", meta={"answer": "6"}),
    ]
    reward = build_reward(REWARDS.get("math.accuracy"), timeout=1.0, num_workers=1)
    scorer = Scorer(
        [WeightedReward("acc", reward)], timeout=60
    )  # sync rewards run in a pool thread
    result = scorer(samples)
    scorer.close()
    assert result.raw["acc"] == [1.0, 0.0, 0.0]
    assert result.outputs[2].info["acc"]["reason"].startswith("timeout")


_FRAGMENTS = st.sampled_from(
    [
        "\\boxed{",
        "}",
        "{",
        "^{",
        "10",
        "9" * 50,
        "\\frac{",
        "\\sqrt{",
        "\\left(",
        "\\right)",
        "!",
        "^",
        "e",
        "x",
        "\\infty",
        "0",
        "/",
        "\\\\",
        "$",
        "####",
        "The answer is ",
        "\n",
        "\\begin{pmatrix}",
        "&",
        "\\end{pmatrix}",
        "%",
        ",",
        ".",
        "-",
        "\\{",
        "\\}",
        "(",
        "]",
    ]
)


@given(st.lists(_FRAGMENTS, max_size=25).map("".join), st.sampled_from(["3", "\\frac{1}{2}", "x"]))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_adversarial_completions_never_crash_or_hang(accuracy, completion, gold):
    start = time.monotonic()
    out = accuracy.score_text(completion, gold)
    assert out.score in (0.0, 1.0)
    assert isinstance(out.info["reason"], str) and out.info["reason"]
    assert time.monotonic() - start < accuracy.verifier.timeout + 15  # limit + restart margin


@pytest.mark.parametrize(
    "answer",
    [
        "9" * 999,  # huge number, under the length cap
        "{" * 300 + "1" + "}" * 300,  # deeply nested braces
        "\\frac{" * 60 + "1" + "}{2}" * 60,  # deeply nested LaTeX
        "2^{2^{2^{2^{2^{2}}}}}",  # power tower
        "((((((((((((((((((((1",  # unbalanced parentheses
    ],
)
def test_named_adversarial_answers(accuracy, answer):
    out = accuracy.score_text("\\boxed{" + answer + "}", "1")
    assert out.score in (0.0, 1.0) and out.info["reason"]


@given(st.text(max_size=60))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_unicode_answers_never_crash(accuracy, text):
    # control characters, lone surrogates and newlines travel through the worker pipe
    out = accuracy.score_text("\\boxed{" + text + "}", "1")
    assert out.score in (0.0, 1.0) and out.info["reason"]


SCRIPT = """
import sys, time
from rewardkit_math.accuracy import MathAccuracy
from rewardkit_math import verify
if __name__ == "__main__":
    a = MathAccuracy(timeout=300, num_workers=1)
    a.score_text("\\\\boxed{1}", "1")
    worker = verify._POOL.idle.queue[0].proc.pid
    print(worker, flush=True)
    a.score_text("\\\\boxed{10^{10^{10}}}", "1")  # hangs in the executor until killed
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_caller_leaves_no_process_behind(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(SCRIPT)
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(caller.stdout.readline())
    deadline = time.monotonic() + 30
    children: list[int] = []
    while not children and time.monotonic() < deadline:  # the executor busy with the job
        with open(f"/proc/{worker}/task/{worker}/children") as f:
            children = [int(p) for p in f.read().split()]
        time.sleep(0.1)
    assert children, "the worker never forked its executor"
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in [worker, *children]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in [worker, *children])
