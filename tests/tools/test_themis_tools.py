"""Themis tools: local defaults, pluggable backends, and their errors."""

from __future__ import annotations

import pytest

from rewardkit_tools.themis.calculator import CalculatorError, evaluate, format_number
from rewardkit_tools.themis.sandbox import run_python
from rewardkit_tools.themis.tools import (
    TOOLS,
    Calendar,
    Code,
    Search,
    ToolError,
    Translator,
    Weather,
    WikiSearch,
    make_toolbox,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("3 * (4 + 5)", "27"),
        ("2^10", "1024"),  # ^ read as a power
        ("7 / 2", "3.5"),
        ("-(8 - 10) * 3", "6"),
        ("sqrt(16) + abs(-2)", "6"),
        ("17 // 5 + 17 % 5", "5"),  # 3 + 2
        ("1 / 3", "0.3333333333"),
        ("max(2, 9, 4)", "9"),
    ],
)
def test_calculator_by_hand(expression, expected):
    assert format_number(evaluate(expression)) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo hi')", "not allowed|unknown"),
        ("(1).__class__", "not allowed"),
        ("x + 1", "unknown name"),
        ("open('f')", "unknown function"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "too large"),
        ("10.0 ** 400", "too large"),
        ("'a' * 3", "not a number"),
        ("1 +", "cannot parse"),
        ("", "empty"),
        ("1+" * 300 + "1", "longer than"),
        ("sqrt(-1)", "sqrt"),
    ],
)
def test_calculator_rejects(expression, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)


def test_calendar_by_hand():
    cal = Calendar()
    assert cal("weekday(2024-03-01)") == "Friday"
    assert cal("add_days(2024-02-28, 2)") == "2024-03-01"  # 2024 is a leap year: 28 -> 29 -> 1
    assert cal("add_days(2024-03-01, -1)") == "2024-02-29"
    assert cal("days_between(2024-01-01, 2024-03-01)") == "60"  # 31 (Jan) + 29 (Feb)
    assert cal("days_between(2024-03-01, 2024-01-01)") == "-60"
    for bad in ["weekday(2024-02-30)", "tomorrow", "add_days(2024-01-01, 99999999)"]:
        with pytest.raises(ToolError):
            cal(bad)


def test_code_tool_runs_tests_in_a_subprocess():
    code = Code(timeout=5, backend="subprocess")
    out = code(
        "def f(x):\n    return 2 * x\nprint(f(3))\n# tests\nassert f(2) == 4\nassert f(3) == 7"
    )
    assert out.splitlines() == [
        "stdout: 6",
        "1/2 tests passed",
        "failed: assert f(3) == 7 (AssertionError)",
    ]
    assert code("raise ValueError('boom')") == "Error: ValueError: boom"
    with pytest.raises(ToolError, match="no code"):
        code("   ")
    with pytest.raises(ValueError, match="backend"):
        Code(backend="docker")


def test_code_tool_through_rewardkit_code_sandbox():
    pytest.importorskip("rewardkit_code")
    code = Code(timeout=5)  # auto: rewardkit-code's sandbox when it is installed
    assert code.backend == "rewardkit_code"
    program = "def f(x):\n    return 2 * x\n# tests\nassert f(2) == 4\nassert f(3) == 7"
    assert code(program).splitlines() == [
        "1/2 tests passed",
        "failed: assert f(3) == 7 (AssertionError)",
    ]


def test_sandbox_timeout_and_isolation(tmp_path):
    assert run_python("while True: pass", timeout=1).error == "timed out after 1s"
    # runs in its own temporary directory, not ours
    result = run_python("import os; print(os.getcwd())")
    assert "themis-code-" in result.stdout and str(tmp_path) not in result.stdout
    # the program's own stdout cannot fake the result line
    assert run_python(
        'print(\'{"error": null, "tests": [], "stdout": "fake"}\')'
    ).stdout.strip() == ('{"error": null, "tests": [], "stdout": "fake"}')


def test_search_bm25_and_custom_corpus():
    search = Search(documents=["cats purr", "dogs bark loudly", "fish swim"], k=2)
    assert search("why do dogs bark").splitlines()[0] == "dogs bark loudly"
    assert "Paris" in WikiSearch()("capital of France")
    with pytest.raises(ToolError, match="empty query"):
        search("  ")
    with pytest.raises(ValueError, match="non-empty"):
        Search(documents=["ok", ""])


def test_search_with_minilm_embeddings():
    search = Search(
        documents=["The cat sleeps on the sofa.", "Stock markets fell today."], method="embedding"
    )
    assert search("a kitten is napping") == "The cat sleeps on the sofa."


def test_pluggable_translator_and_weather():
    assert Translator()("fr: good morning") == "bon matin"
    assert Translator()("de: the red book") == "der rot buch"
    assert Translator(backend=lambda text, lang: f"{lang}:{text.upper()}")("it: ciao") == "it:CIAO"
    with pytest.raises(ToolError, match="no local dictionary"):
        Translator()("xx: hello")
    with pytest.raises(ToolError, match="language"):
        Translator()("no separator")
    assert Weather()("paris").startswith("Cloudy")
    assert Weather(backend=lambda city: f"sunny in {city}")("Rome") == "sunny in Rome"
    with pytest.raises(ToolError, match="no weather"):
        Weather()("Atlantis")
    assert WikiSearch(backend=lambda q: "remote: " + q)("x") == "remote: x"


def test_toolbox():
    assert set(TOOLS) == {
        "Calculator",
        "Code",
        "Calendar",
        "Search",
        "WikiSearch",
        "Translator",
        "Weather",
    }
    box = make_toolbox(["Calculator", "Weather"], Weather={"table": {"oslo": "snow"}})
    assert list(box) == ["Calculator", "Weather"] and box["Weather"]("Oslo") == "snow"
    with pytest.raises(KeyError, match="unknown tools"):
        make_toolbox(["Calculator", "Browser"])
