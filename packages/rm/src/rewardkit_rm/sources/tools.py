"""Tool-call preference pairs from BFCL: the ground-truth calls against perturbed calls.

The BFCL questions ship in the bfcl-eval package (read by rewardkit_tools.bfcl). The chosen
answer is the ground truth in ToolRL's layout (`<tool_call>` with one JSON call a line;
for irrelevance questions, a `<response>` that makes no call). Rejected answers are
perturbations of it, as a policy gets calls wrong:

- `wrong_name`: another offered function (or, with one function, a function of another
  BFCL question);
- `drop_param`: a needed parameter left out;
- `wrong_value`: one value changed (numbers shifted, a string replaced by a string value of
  another question, booleans flipped, a list element dropped);
- `extra_param`: a parameter the function does not have (a parameter name of another
  question's function, with one of its values);
- `drop_call`: one of several calls left out;
- `no_call`: a refusal instead of the calls;
- `spurious_call` (irrelevance questions): a call where none should be made.

Every chosen answer must pass BFCL-style acceptance (rewardkit_tools.bfcl_scoring.judge)
and every rejected one must fail it; a perturbation that is still accepted is dropped and
counted. Problems are keyed by the user's question (the same question in two categories
is one problem).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from rewardkit_rm.data import Pair

DEFAULT_CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "irrelevance",
)


@dataclass
class ToolsReport:
    rows: int = 0
    skipped_rows: int = 0  # no usable ground truth (relevance rows, chosen not accepted)
    perturbations: int = 0
    still_accepted: int = 0  # perturbations BFCL would accept: not used
    pairs: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _required(row: dict[str, Any], call_index: int) -> list[str]:
    """Parameters of a ground-truth call that must be given (no "" among the accepted)."""
    name, spec = next(iter(row["possible_answer"][call_index].items()))
    return [k for k, accepted in spec.items() if accepted and "" not in accepted]


@dataclass
class Pools:
    """What other questions use: function names, parameters with a value, string values."""

    names: list[str]
    params: list[tuple[str, Any]]
    strings: list[str]

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> Pools:
        names, params, strings = set(), {}, set()
        for row in rows:
            for call in row.get("gt_calls") or []:
                names.add(call["name"])
                for k, v in call["parameters"].items():
                    params.setdefault(k, v)
                    if isinstance(v, str) and v:
                        strings.add(v)
        return cls(sorted(names), sorted(params.items(), key=lambda kv: kv[0]), sorted(strings))


def _changed(value: Any, rng: random.Random, pools: Pools) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([1, -1, 10, 100])
    if isinstance(value, float):
        return round(value * rng.choice([2.0, 0.5, 10.0]) + 1.0, 3)
    if isinstance(value, str):
        other = rng.choice(pools.strings)
        return other if other != value else value + " " + other
    if isinstance(value, list) and value:
        return value[:-1]
    if isinstance(value, dict) and value:
        k = next(iter(value))
        return {**value, k: _changed(value[k], rng, pools)}
    return rng.choice(pools.strings)


def _placeholder(schema: dict[str, Any]) -> Any:
    kind = (schema or {}).get("type", "string")
    return {
        "integer": 1,
        "number": 1.0,
        "float": 1.0,
        "boolean": True,
        "array": [],
        "dict": {},
        "object": {},
    }.get(kind, "example")


def perturbations(row: dict[str, Any], rng: random.Random, pools: Pools) -> list[tuple[str, str]]:
    """(kind, answer text) of every perturbation that fits the row."""
    from rewardkit_tools.bfcl import NO_CALL_RESPONSE
    from rewardkit_tools.toolrl_parse import answer_text, format_calls

    out: list[tuple[str, str]] = []
    gt = row["gt_calls"]
    if not gt:  # irrelevance: any call is wrong
        f = row["functions"][0]
        props = (f.get("parameters") or {}).get("properties", {})
        required = (f.get("parameters") or {}).get("required", list(props)[:1])
        params = {k: _placeholder(props.get(k, {})) for k in required}
        out.append(("spurious_call", format_calls([{"name": f["name"], "parameters": params}])))
        return out

    def with_calls(kind: str, calls: list[dict[str, Any]]) -> None:
        out.append((kind, format_calls(calls)))

    others = [n for n in row["function_names"] if n != gt[0]["name"]]
    if not others:
        others = [n for n in rng.sample(pools.names, 5) if n not in row["function_names"]]
    calls = copy.deepcopy(gt)
    calls[0]["name"] = rng.choice(others)
    with_calls("wrong_name", calls)
    for i, call in enumerate(gt):
        needed = [k for k in _required(row, i) if k in call["parameters"]]
        if needed:
            calls = copy.deepcopy(gt)
            del calls[i]["parameters"][rng.choice(needed)]
            with_calls("drop_param", calls)
            break
    for i, call in enumerate(gt):
        if call["parameters"]:
            calls = copy.deepcopy(gt)
            key = rng.choice(sorted(call["parameters"]))
            calls[i]["parameters"][key] = _changed(call["parameters"][key], rng, pools)
            with_calls("wrong_value", calls)
            break
    known = {p for f in row["functions"] for p in (f.get("parameters") or {}).get("properties", {})}
    extra = [kv for kv in rng.sample(pools.params, 8) if kv[0] not in known]
    if extra:
        calls = copy.deepcopy(gt)
        calls[0]["parameters"][extra[0][0]] = extra[0][1]
        with_calls("extra_param", calls)
    if len(gt) > 1:
        with_calls("drop_call", copy.deepcopy(gt[:-1]))
    out.append(("no_call", answer_text(None, NO_CALL_RESPONSE)))
    return out


def problem_key(row: dict[str, Any]) -> str:
    question = [m["content"] for m in row["prompt"] if m["role"] != "system"]
    return "bfcl:" + hashlib.sha256(json.dumps(question).encode()).hexdigest()[:16]


def tools_pairs(
    categories: tuple[str, ...] | list[str] = DEFAULT_CATEGORIES,
    prompt_style: str = "compact",
    max_rejected: int = 4,
    seed: int = 0,
    limit: int | None = None,
) -> tuple[list[Pair], ToolsReport]:
    from rewardkit_tools.bfcl import load_bfcl
    from rewardkit_tools.bfcl_scoring import judge

    rng = random.Random(seed)
    rows = load_bfcl(list(categories), prompt_style)
    rows = sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:limit]
    pools = Pools.of(rows)
    report = ToolsReport(rows=len(rows))
    pairs, seen = [], set()
    for row in rows:
        key = problem_key(row)
        if row.get("relevance") or key in seen or not judge(row, row["ground_truth"])[1]:
            report.skipped_rows += 1
            continue
        seen.add(key)
        kept = []
        for kind, text in perturbations(row, rng, pools):
            report.perturbations += 1
            if judge(row, text)[1]:
                report.still_accepted += 1
                continue
            kept.append((kind, text))
        rng.shuffle(kept)
        for kind, text in kept[:max_rejected]:
            report.by_kind[kind] = report.by_kind.get(kind, 0) + 1
            pairs.append(
                Pair(
                    prompt=row["prompt"],
                    chosen=row["ground_truth"],
                    rejected=text,
                    problem_id=key,
                    source="tools.bfcl",
                    meta={"kind": kind, "category": row["category"], "bfcl_id": row["id"]},
                )
            )
    report.pairs = len(pairs)
    return pairs, report
