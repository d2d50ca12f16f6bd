"""BFCL (Berkeley Function Calling Leaderboard) data -> ToolRL samples, and task `tools.bfcl`.

The questions, function docs and possible answers ship as JSON-lines files inside the
`bfcl-eval` package (`bfcl_eval/data/BFCL_v4_<category>.json` and
`data/possible_answer/...`). They are read as files: the package's modules are never
imported (their runtime dependencies are not installed).

BFCL lists the accepted values of every parameter. For training (ToolRL, arXiv
2504.13958) the first accepted value is the ground truth; a first value of "" means the
parameter is optional and is left out. Nested dicts list accepted values per key and are
resolved the same way. An empty list of accepted values (7 parameters of the live files)
is treated as optional too. Irrelevance rows expect no call (the reference answer is a
response); relevance rows expect some call to one of the offered functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from rewardkit.tasks.base import RewardSpec, Task
from rewardkit_tools.toolrl_parse import format_calls, toolrl_system_prompt

CALL_CATEGORIES = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
IRRELEVANCE_CATEGORIES = ("irrelevance", "live_irrelevance")
RELEVANCE_CATEGORIES = ("live_relevance",)
CATEGORIES = CALL_CATEGORIES + IRRELEVANCE_CATEGORIES + RELEVANCE_CATEGORIES
PROMPT_STYLES = ("toolrl", "compact", "demo")
NO_CALL_RESPONSE = "None of the available functions can do this."
OMIT = object()  # a parameter the ground truth leaves out


def data_dir() -> Path:
    """bfcl_eval/data, found without importing the package."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the bfcl-eval package is not installed (pip install bfcl-eval)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not path.is_dir():
        raise FileNotFoundError(f"bfcl-eval is installed but has no data folder at {path}")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path.name} line {n}: not JSON ({exc})") from None
    return rows


# -- first accepted values ------------------------------------------------------------------
def is_nested_spec(value: Any) -> bool:
    """A dict whose values are lists of accepted values (BFCL's nested-dict answers)."""
    return (
        isinstance(value, dict) and bool(value) and all(isinstance(v, list) for v in value.values())
    )


def first_value(accepted: Any, where: str) -> Any:
    """The training ground truth of one parameter: its first accepted value, with nested
    dict specs resolved recursively; OMIT when the first value is "" (or none is listed)."""
    if not isinstance(accepted, list):
        raise ValueError(f"{where}: accepted values must be a list, got {accepted!r}")
    if not accepted or accepted[0] == "":
        return OMIT
    first = accepted[0]
    if is_nested_spec(first):
        return resolve_params(first, where)
    if isinstance(first, list):
        return [resolve_params(x, where) if is_nested_spec(x) else x for x in first]
    return first


def resolve_params(spec: dict[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for key, accepted in spec.items():
        value = first_value(accepted, f"{where}.{key}")
        if value is not OMIT:
            out[key] = value
    return out


def ground_truth_calls(possible: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """BFCL possible answer [{name: {param: [accepted...]}}] -> [{"name", "parameters"}]."""
    calls = []
    for i, item in enumerate(possible):
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"{where}: call {i} must be a one-key dict {{name: params}}")
        ((name, spec),) = item.items()
        calls.append({"name": name, "parameters": resolve_params(spec, f"{where}:{name}")})
    return calls


# -- conversion -----------------------------------------------------------------------------
def compact_prompt(functions: list[dict[str, Any]]) -> str:
    """A short tool listing (names and parameter names) for tiny models."""
    lines = []
    for f in functions:
        params = ", ".join((f.get("parameters") or {}).get("properties", {}))
        lines.append(f"{f['name']}({params})")
    return "Tools:\n" + "\n".join(lines) + "\nAnswer with <think>, <tool_call> and/or <response>."


# The "demo" style, for small chat models (SmolLM2-135M-Instruct ignores the ToolRL system
# prompt and answers in prose): a short instruction, one worked exchange on a made-up tool
# (not a BFCL function), then the real question with its tools as one-line signatures.
DEMO_SYSTEM = (
    "You call functions. Answer with <think>a short thought</think> then <tool_call> with "
    'one JSON line {"name": ..., "parameters": {...}} and </tool_call>.'
)
DEMO_USER = (
    "Functions:\nget_weather(city: string, unit: string (optional)) - Get the weather of a "
    "city\n\nQuestion: What is the weather in Paris in celsius?"
)
DEMO_ANSWER = (
    "<think>The user wants the weather in Paris, so I call get_weather.</think>\n<tool_call>\n"
    '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'
)


def signature(function: dict[str, Any], description_chars: int = 100) -> str:
    """One line per tool: `name(param: type (optional), ...) - first sentence`, with a
    parameter's allowed values when the schema lists them (`enum`)."""
    schema = function.get("parameters") or {}
    required = set(schema.get("required", []))
    params = []
    for name, spec in schema.get("properties", {}).items():
        spec = spec if isinstance(spec, dict) else {}
        text = f"{name}: {spec.get('type', 'any')}"
        if spec.get("enum"):
            text += " one of " + json.dumps(spec["enum"], ensure_ascii=False)
        if name not in required:
            text += " (optional)"
        params.append(text)
    line = f"{function['name']}({', '.join(params)})"
    description = (function.get("description") or "").split(". ")[0].strip()
    if description:
        line += " - " + description[:description_chars]
    return line


def demo_prompt(functions: list[dict[str, Any]], messages: list[dict[str, str]], extra: list[str]):
    """Chat messages of the "demo" style; `extra` is the row's own system text, if any."""
    tools = "Functions:\n" + "\n".join(signature(f) for f in functions) + "\n\nQuestion: "
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if first_user is None:
        raise ValueError("a BFCL question needs a user message")
    messages = [dict(m) for m in messages]
    messages[first_user]["content"] = tools + messages[first_user]["content"]
    return [
        {"role": "system", "content": "\n\n".join([DEMO_SYSTEM, *extra])},
        {"role": "user", "content": DEMO_USER},
        {"role": "assistant", "content": DEMO_ANSWER},
        *messages,
    ]


def convert_row(
    row: dict[str, Any],
    category: str,
    possible: dict[str, Any] | None,
    prompt_style: str = "toolrl",
) -> dict[str, Any]:
    """One BFCL entry -> a ToolRL row (chat prompt, functions, ground truth, BFCL answer)."""
    rid = row.get("id", "?")
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    functions = row.get("function")
    turns = row.get("question")
    if not isinstance(functions, list) or not isinstance(turns, list) or len(turns) != 1:
        raise ValueError(f"BFCL row {rid}: needs a function list and exactly one question turn")
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
    messages = [dict(m) for m in turns[0]]
    extra = [m["content"] for m in messages if m["role"] == "system"]
    messages = [m for m in messages if m["role"] != "system"]
    if prompt_style == "demo":
        prompt = demo_prompt(functions, messages, extra)
    else:
        system = (
            toolrl_system_prompt(functions)
            if prompt_style == "toolrl"
            else compact_prompt(functions)
        )
        prompt = [{"role": "system", "content": "\n\n".join([system, *extra])}, *messages]
    out = {
        "id": rid,
        "category": category,
        "prompt": prompt,
        "functions": functions,
        "function_names": [f["name"] for f in functions],
        "relevance": False,
    }
    if category in CALL_CATEGORIES:
        if possible is None:
            raise ValueError(f"BFCL row {rid}: no possible answer for a {category} question")
        calls = ground_truth_calls(possible["ground_truth"], f"BFCL row {rid}")
        out.update(
            ground_truth=format_calls(calls),
            gt_calls=calls,
            possible_answer=possible["ground_truth"],
        )
    elif category in IRRELEVANCE_CATEGORIES:
        out.update(
            ground_truth=f"<response>{NO_CALL_RESPONSE}</response>", gt_calls=[], possible_answer=[]
        )
    else:  # relevance: some call is needed, any offered function will do
        out.update(
            ground_truth="<tool_call>\n</tool_call>",
            gt_calls=None,
            possible_answer=None,
            relevance=True,
        )
    return out


def load_category(
    category: str, prompt_style: str = "toolrl", root: Path | None = None
) -> list[dict[str, Any]]:
    """Every entry of one BFCL category as ToolRL rows."""
    root = data_dir() if root is None else root
    questions = read_jsonl(root / f"BFCL_v4_{category}.json")
    possible: dict[str, Any] = {}
    if category in CALL_CATEGORIES:
        answers = read_jsonl(root / "possible_answer" / f"BFCL_v4_{category}.json")
        possible = {a["id"]: a for a in answers}
    return [convert_row(q, category, possible.get(q["id"]), prompt_style) for q in questions]


def load_bfcl(
    categories: list[str] | tuple[str, ...] = CATEGORIES, prompt_style: str = "toolrl"
) -> list[dict[str, Any]]:
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown BFCL categories {unknown}; known: {', '.join(CATEGORIES)}")
    return [row for c in categories for row in load_category(c, prompt_style)]


def _id_hash(row_id: str) -> float:
    return int(hashlib.sha256(row_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(row_id: str, test_fraction: float) -> str:
    """A stable split from the id's hash (the same on every machine and run)."""
    return "test" if _id_hash(row_id) < test_fraction else "train"


class BFCLTask(Task):
    """`tools.bfcl`: BFCL questions in ToolRL format, scored by `tools.toolrl`.

    BFCL has no training split; rows are split by a hash of their id (`test_fraction` of
    them to "test"); split "all" gives every row. Options: categories (default all
    single-turn ones), prompt_style ("toolrl" system prompt; "compact" for tiny models;
    "demo" for small chat models: one worked exchange and one-line tool signatures),
    test_fraction, max_rows (per split, 0 = all).
    """

    name = "tools.bfcl"
    rewards = [RewardSpec("tools.toolrl", 1.0)]
    default_config = {"max_completion_length": 256, "max_prompt_length": 1024}

    def __init__(
        self,
        categories: list[str] | None = None,
        prompt_style: str = "toolrl",
        test_fraction: float = 0.2,
        max_rows: int = 0,
    ):
        if not 0.0 <= test_fraction <= 1.0:
            raise ValueError(f"tools.bfcl: test_fraction must be in [0, 1], got {test_fraction}")
        if max_rows < 0:
            raise ValueError(f"tools.bfcl: max_rows must be >= 0, got {max_rows}")
        categories = list(CATEGORIES if categories is None else categories)
        super().__init__(
            categories=categories,
            prompt_style=prompt_style,
            test_fraction=test_fraction,
            max_rows=max_rows,
        )
        rows = load_bfcl(categories, prompt_style)
        self._splits: dict[str, list[dict[str, Any]]] = {"all": rows, "train": [], "test": []}
        for row in rows:
            self._splits[split_of(row["id"], test_fraction)].append(row)
        if max_rows:
            # a stable mix of categories rather than the first category's rows
            self._splits = {
                k: sorted(v, key=lambda r: _id_hash(r["id"]))[:max_rows]
                for k, v in self._splits.items()
            }

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in self._splits:
            raise ValueError(f"tools.bfcl has splits 'train', 'test' and 'all', not {split!r}")
        return self._splits[split]

    def prompt(self, row: dict[str, Any]):
        return row["prompt"]
