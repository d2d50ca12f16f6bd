"""Task `code.functions`: short Python functions a small instruct model can partly write.

HumanEval is out of reach of a 135M-parameter model (pass@1 near 0), so this task set is
generated here: one-line to five-line functions (arithmetic, predicates, lists, strings,
loops) in families that vary a constant (`add_7`, `count_greater_than_12`, ...) plus single
functions (`is_prime`, `running_total`, `capitalize_words`, ...), every task with its
canonical solution and 6 tests computed from it. The set
is deterministic (seeded) and split into disjoint train and test tasks, stratified by
family so both splits cover every kind of function.

The prompt is one chat message: "Write a Python function `name(args)` that <does this>.
Answer with the function in a ```python code block." Tests are assert lines
(`assert name(args) == expected`) judged in the sandbox like HumanEval's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rewardkit.tasks.base import RewardSpec, Task

INSTRUCTION = "Answer with the function in a ```python code block."
TESTS_PER_TASK = 6


@dataclass(frozen=True)
class Function:
    name: str
    args: str  # the parameter list, e.g. "xs, k"
    does: str  # what it returns, completing "that returns ..." or "that ..."
    solution: str  # the body, indented by 4 spaces
    inputs: Callable[[random.Random], tuple]  # one call's arguments
    family: str

    @property
    def source(self) -> str:
        return f"def {self.name}({self.args}):\n{self.solution}\n"


def _ints(lo=-20, hi=20, n=(0, 7)):
    return lambda r: ([r.randint(lo, hi) for _ in range(r.randint(*n))],)


def _int(lo=-50, hi=50):
    return lambda r: (r.randint(lo, hi),)


def _word(r: random.Random) -> str:
    letters = "abcdeilmnorstu"
    return "".join(r.choice(letters) for _ in range(r.randint(0, 8)))


def _sentence(r: random.Random) -> str:
    return " ".join(_word(r) or "a" for _ in range(r.randint(1, 5)))


def _families(rng: random.Random) -> list[Function]:
    """Every task of the set (a few variants per family)."""
    out: list[Function] = []

    def add(family, name, args, does, body, inputs):
        out.append(
            Function(name, args, does, "    " + body.replace("\n", "\n    "), inputs, family)
        )

    word = lambda r: (_word(r),)  # noqa: E731
    sentence = lambda r: (_sentence(r),)  # noqa: E731
    for k in range(2, 21):
        w = k % 6 + 1  # a word-length threshold: six of them are enough
        for family, name, args, does, body, inputs in [
            ("add", f"add_{k}", "x", f"returns x plus {k}", f"return x + {k}", _int()),
            ("subtract", f"subtract_{k}", "x", f"returns x minus {k}", f"return x - {k}", _int()),
            ("times", f"times_{k}", "x", f"returns x multiplied by {k}", f"return x * {k}", _int()),
            (
                "modulo",
                f"remainder_by_{k}",
                "n",
                f"returns the remainder of the non-negative integer n divided by {k}",
                f"return n % {k}",
                _int(0, 200),
            ),
            (
                "divisible",
                f"divisible_by_{k}",
                "n",
                f"returns True if the integer n is divisible by {k}, else False",
                f"return n % {k} == 0",
                _int(-100, 100),
            ),
            (
                "round_down",
                f"round_down_to_{k}",
                "n",
                f"returns the largest multiple of {k} that is not greater than the non-negative "
                "integer n",
                f"return n - n % {k}",
                _int(0, 200),
            ),
            (
                "cap",
                f"cap_at_{k}",
                "x",
                f"returns x, but at most {k}",
                f"return min(x, {k})",
                _int(-30, 30),
            ),
            (
                "count_multiples",
                f"count_multiples_of_{k}",
                "xs",
                f"returns how many numbers in the list xs are multiples of {k}",
                f"return sum(1 for x in xs if x % {k} == 0)",
                _ints(),
            ),
            (
                "greater",
                f"count_greater_than_{k}",
                "xs",
                f"returns how many numbers in the list xs are greater than {k}",
                f"return sum(1 for x in xs if x > {k})",
                _ints(-30, 30),
            ),
            (
                "less",
                f"count_less_than_{k}",
                "xs",
                f"returns how many numbers in the list xs are less than {k}",
                f"return sum(1 for x in xs if x < {k})",
                _ints(),
            ),
            (
                "each_plus",
                f"add_{k}_to_each",
                "xs",
                f"returns a new list with {k} added to every number of the list xs",
                f"return [x + {k} for x in xs]",
                _ints(),
            ),
            (
                "keep_multiples",
                f"multiples_of_{k}",
                "xs",
                f"returns a new list of the numbers in xs that are multiples of {k}, in order",
                f"return [x for x in xs if x % {k} == 0]",
                _ints(-30, 30, (0, 9)),
            ),
            (
                "first_k",
                f"first_{k}",
                "xs",
                f"returns a list of the first {k} elements of the list xs (all of them if it "
                "is shorter)",
                f"return xs[:{k}]",
                _ints(n=(0, k + 4)),
            ),
            (
                "last_k",
                f"last_{k}",
                "xs",
                f"returns a list of the last {k} elements of the list xs (all of them if it "
                "is shorter)",
                f"return xs[-{k}:]",
                _ints(n=(0, k + 4)),
            ),
            (
                "repeat",
                f"repeat_{k}_times",
                "s",
                f"returns the string s repeated {k} times",
                f"return s * {k}",
                word,
            ),
            (
                "long_words",
                f"words_longer_than_{w}",
                "s",
                f"returns how many words of the string s are longer than {w} letters",
                f"return sum(1 for word in s.split() if len(word) > {w})",
                sentence,
            ),
            (
                "power",
                f"power_of_{k}",
                "n",
                f"returns {k} raised to the power n (n is a non-negative integer)",
                f"return {k} ** n",
                _int(0, 10),
            ),
        ]:
            if family == "long_words" and k > 7:
                continue
            add(family, name, args, does, body, inputs)
    for name, does, body, inputs in [
        (
            "is_even",
            "returns True if the integer n is even, else False",
            "return n % 2 == 0",
            _int(),
        ),
        ("is_odd", "returns True if the integer n is odd, else False", "return n % 2 == 1", _int()),
        ("square", "returns n squared", "return n * n", _int()),
        ("cube", "returns n cubed", "return n ** 3", _int(-20, 20)),
        (
            "absolute",
            "returns the absolute value of n, without using abs()",
            "return n if n >= 0 else -n",
            _int(),
        ),
        (
            "sign",
            "returns 1 if n is positive, -1 if n is negative and 0 if n is zero",
            "if n > 0:\n    return 1\nif n < 0:\n    return -1\nreturn 0",
            _int(-5, 5),
        ),
        (
            "factorial",
            "returns n factorial (n is a non-negative integer)",
            "result = 1\nfor i in range(2, n + 1):\n    result *= i\nreturn result",
            _int(0, 12),
        ),
        (
            "sum_to",
            "returns the sum of the integers from 1 to n (0 if n < 1)",
            "return sum(range(1, n + 1))",
            _int(-3, 60),
        ),
        (
            "fibonacci",
            "returns the n-th Fibonacci number, with fibonacci(0) = 0 and fibonacci(1) = 1",
            "a, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nreturn a",
            _int(0, 25),
        ),
        (
            "is_prime",
            "returns True if n is a prime number, else False",
            "if n < 2:\n    return False\nfor d in range(2, int(n ** 0.5) + 1):\n    if n % d == 0:\n"
            "        return False\nreturn True",
            _int(-3, 60),
        ),
        (
            "digit_sum",
            "returns the sum of the decimal digits of the non-negative integer n",
            "return sum(int(d) for d in str(n))",
            _int(0, 99999),
        ),
        (
            "count_digits",
            "returns how many decimal digits the non-negative integer n has",
            "return len(str(n))",
            _int(0, 999999),
        ),
        (
            "reverse_number",
            "returns the non-negative integer n with its decimal digits reversed (reverse_number(120) == 21)",
            "return int(str(n)[::-1])",
            _int(0, 99999),
        ),
    ]:
        add("number", name, "n", does, body, inputs)
    pairs = lambda r: (r.randint(-30, 30), r.randint(-30, 30))  # noqa: E731
    positive_pairs = lambda r: (r.randint(1, 60), r.randint(1, 60))  # noqa: E731
    for name, does, body, inputs in [
        (
            "larger",
            "returns the larger of the two numbers a and b",
            "return a if a > b else b",
            pairs,
        ),
        (
            "smaller",
            "returns the smaller of the two numbers a and b",
            "return a if a < b else b",
            pairs,
        ),
        ("distance", "returns the absolute difference between a and b", "return abs(a - b)", pairs),
        (
            "gcd",
            "returns the greatest common divisor of the positive integers a and b",
            "while b:\n    a, b = b, a % b\nreturn a",
            positive_pairs,
        ),
        (
            "average_floor",
            "returns the average of a and b rounded down to an integer",
            "return (a + b) // 2",
            pairs,
        ),
    ]:
        add("pair", name, "a, b", does, body, inputs)
    for name, does, body, inputs in [
        ("sum_list", "returns the sum of the numbers in the list xs", "return sum(xs)", _ints()),
        (
            "product",
            "returns the product of the numbers in the list xs (1 for an empty list)",
            "result = 1\nfor x in xs:\n    result *= x\nreturn result",
            _ints(-5, 5),
        ),
        (
            "count_even",
            "returns how many numbers in the list xs are even",
            "return sum(1 for x in xs if x % 2 == 0)",
            _ints(),
        ),
        (
            "sum_even",
            "returns the sum of the even numbers in the list xs",
            "return sum(x for x in xs if x % 2 == 0)",
            _ints(),
        ),
        (
            "sum_odd",
            "returns the sum of the odd numbers in the list xs",
            "return sum(x for x in xs if x % 2 == 1)",
            _ints(),
        ),
        (
            "count_positive",
            "returns how many numbers in the list xs are greater than 0",
            "return sum(1 for x in xs if x > 0)",
            _ints(),
        ),
        (
            "largest",
            "returns the largest number in the non-empty list xs",
            "return max(xs)",
            _ints(n=(1, 7)),
        ),
        (
            "smallest",
            "returns the smallest number in the non-empty list xs",
            "return min(xs)",
            _ints(n=(1, 7)),
        ),
        (
            "reverse_list",
            "returns a new list with the elements of xs in reverse order",
            "return xs[::-1]",
            _ints(),
        ),
        (
            "sort_list",
            "returns a new list with the numbers of xs in increasing order",
            "return sorted(xs)",
            _ints(),
        ),
        (
            "double_each",
            "returns a new list with every number of xs doubled",
            "return [2 * x for x in xs]",
            _ints(),
        ),
        (
            "square_each",
            "returns a new list with every number of xs squared",
            "return [x * x for x in xs]",
            _ints(),
        ),
        (
            "only_positive",
            "returns a new list of the numbers in xs that are greater than 0, in order",
            "return [x for x in xs if x > 0]",
            _ints(),
        ),
        (
            "remove_duplicates",
            "returns a new list of the elements of xs without repeats, keeping the first occurrence of each, in order",
            "seen = []\nfor x in xs:\n    if x not in seen:\n        seen.append(x)\nreturn seen",
            _ints(-3, 3, (0, 9)),
        ),
        (
            "last_element",
            "returns the last element of the list xs, or None if it is empty",
            "return xs[-1] if xs else None",
            _ints(),
        ),
        (
            "second_largest",
            "returns the second largest distinct number in the list xs, or None if there is none",
            "values = sorted(set(xs))\nreturn values[-2] if len(values) > 1 else None",
            _ints(-5, 5, (0, 7)),
        ),
        (
            "range_of",
            "returns the largest number minus the smallest number of the non-empty list xs",
            "return max(xs) - min(xs)",
            _ints(n=(1, 7)),
        ),
        (
            "running_total",
            "returns the list of running sums of xs (running_total([1, 2, 3]) == [1, 3, 6])",
            "total, out = 0, []\nfor x in xs:\n    total += x\n    out.append(total)\nreturn out",
            _ints(),
        ),
    ]:
        add("list", name, "xs", does, body, inputs)
    for name, does, body, inputs in [
        ("reverse_string", "returns the string s reversed", "return s[::-1]", word),
        (
            "is_palindrome",
            "returns True if the string s reads the same backwards, else False",
            "return s == s[::-1]",
            lambda r: (r.choice([_word(r), "abba", "level", "noon", "racecar"]),),
        ),
        (
            "count_vowels",
            "returns how many vowels (a, e, i, o, u) the lowercase string s contains",
            "return sum(1 for c in s if c in 'aeiou')",
            word,
        ),
        (
            "shout",
            "returns the string s in upper case followed by an exclamation mark",
            "return s.upper() + '!'",
            word,
        ),
        (
            "first_letter",
            "returns the first character of the string s, or an empty string if s is empty",
            "return s[:1]",
            word,
        ),
        (
            "word_count",
            "returns the number of words in the string s (words are separated by single spaces)",
            "return len(s.split())",
            sentence,
        ),
        (
            "longest_word",
            "returns the longest word of the string s (the first one if there is a tie)",
            "return max(s.split(), key=len)",
            sentence,
        ),
        (
            "capitalize_words",
            "returns the string s with the first letter of every word in upper case",
            "return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))",
            sentence,
        ),
        (
            "remove_spaces",
            "returns the string s without any space characters",
            "return s.replace(' ', '')",
            sentence,
        ),
        (
            "initials",
            "returns the first letters of the words of the string s, joined, in upper case",
            "return ''.join(w[0].upper() for w in s.split())",
            sentence,
        ),
    ]:
        add("string", name, "s", does, body, inputs)
    for c in "abcdeilmnorstu":
        add(
            "count_char",
            f"count_letter_{c}",
            "s",
            f"returns how many times the letter '{c}' occurs in the string s",
            f"return s.count('{c}')",
            word,
        )
    return out


def _call(fn: Callable, args: tuple) -> Any:
    return fn(*args)


def _discriminating_calls(f: Function, fn: Callable, rng: random.Random) -> list[tuple]:
    """TESTS_PER_TASK distinct argument tuples whose tests no trivial answer passes: the
    expected results are not all equal (`return False`, `return 0` fail) and not all equal
    to the first argument (`return x`, `return xs` fail)."""

    def trivial(calls: list[tuple]) -> bool:
        results = [repr(_call(fn, a)) for a in calls]
        return len(set(results)) == 1 or all(r == repr(a[0]) for r, a in zip(results, calls))

    candidates, seen = [], set()
    for _ in range(2000):
        args = f.inputs(rng)
        if repr(args) not in seen:
            seen.add(repr(args))
            candidates.append(args)
            if len(candidates) >= TESTS_PER_TASK:  # the newest one completes the first five
                calls = candidates[: TESTS_PER_TASK - 1] + [args]
                if not trivial(calls):
                    return calls
    raise ValueError(f"{f.name}: no {TESTS_PER_TASK} tests that a trivial answer fails")


def build_tasks(seed: int = 0) -> list[dict[str, Any]]:
    """Every task of the set with its prompt, canonical solution and 6 tests."""
    rng = random.Random(seed)
    tasks = []
    for f in _families(rng):
        namespace: dict[str, Any] = {}
        exec(compile(f.source, f"<{f.name}>", "exec"), namespace)  # our own reference code
        fn = namespace[f.name]
        calls = _discriminating_calls(f, fn, rng)
        arg_text = [", ".join(repr(a) for a in args) for args in calls]
        tests = [
            {
                "type": "assert",
                "code": f"assert {f.name}({a}) == {_call(fn, args)!r}",
                "name": f"{f.name}#{j}",
            }
            for j, (a, args) in enumerate(zip(arg_text, calls, strict=True))
        ]
        tasks.append(
            {
                "task_id": f.name,
                "family": f.family,
                "entry_point": f.name,
                "question": f"Write a Python function `{f.name}({f.args})` that {f.does}. {INSTRUCTION}",
                "canonical_solution": f.source,
                "tests": tests,
            }
        )
    return tasks


def split_tasks(tasks: list[dict[str, Any]], test_share: float, seed: int) -> dict[str, list]:
    """Disjoint train/test tasks, stratified by family."""
    rng = random.Random(seed)
    by_family: dict[str, list] = {}
    for t in tasks:
        by_family.setdefault(t["family"], []).append(t)
    split: dict[str, list] = {"train": [], "test": []}
    for family in sorted(by_family):
        group = by_family[family][:]
        rng.shuffle(group)
        n_test = round(len(group) * test_share)
        split["test"] += group[:n_test]
        split["train"] += group[n_test:]
    return split


class Functions(Task):
    """Short Python functions as chat questions (see the module docstring). Options:
    `test_share` (fraction of tasks held out, default 0.5), `seed`, `executor` (the
    CodeExecutor options of the rewards' sandbox, shared through the config)."""

    name = "code.functions"
    rewards = [RewardSpec("code.verpo")]
    # the model explains its code after the block: stop at the closing fence
    default_config = {
        "advantage": "code.verpo",
        "num_generations": 8,
        "max_completion_length": 128,
        "stop_strings": ["\n```\n"],
    }

    def __init__(self, test_share: float = 0.5, seed: int = 0, executor: dict | None = None):
        if not 0 < test_share < 1:
            raise ValueError(f"test_share must be in (0, 1), got {test_share}")
        super().__init__(test_share=test_share, seed=seed, executor=executor or {})
        self.splits = split_tasks(build_tasks(seed), test_share, seed)

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in self.splits:
            raise ValueError(f"code.functions has the splits 'train' and 'test', got {split!r}")
        return self.splits[split]

    def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": row["question"]}]
