"""`rewardkit replay RUN/completions.jsonl --rewards a,b`: re-score saved rollouts with other
rewards and show where rewards disagree - a probe for reward hacking.

The trainer writes one JSON object per sampled completion (trainer/logging.py
`write_completions`): step, group, prompt, completion, rewards (each reward's score as
trained), advantage, truncated. The dataset row (`meta`: answers, tests) is not in the
file; replay finds it by looking the prompt up among the rows of the run's task (named by
`--task`, else by the run's config.json), or takes a row's own `meta` when it has one.
The rows of one step are scored as one batch, as in training (group statistics intact).

Disagreement: each reward's scores are min-max normalised over the file to [0, 1]; a
sample on which one reward minus another is at least `threshold` is one that the first
loves and the second rejects. The scores recorded in the file take part as `run:<name>`
(leave them out with `--no-recorded`); a reward that gives every sample the same score
cannot disagree and is reported as constant.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from scipy import stats

from rewardkit.external import build_reward_set, jsonable, parse_options, parse_reward_set
from rewardkit.registry import TASKS, RegistryError
from rewardkit.rewards.scoring import RewardError, Scorer, WeightedReward
from rewardkit.types import Sample

RECORDED = "run:"


def load_completions(path: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """The rows of a completions.jsonl (a run directory means its completions.jsonl)."""
    path = Path(path)
    if path.is_dir():
        path = path / "completions.jsonl"
    rows = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("completion"), str):
                raise ValueError(f"{path}:{n}: expected an object with a 'completion' string")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} has no completions")
    return path, rows


def run_task(run_dir: Path) -> tuple[str, dict[str, Any]] | None:
    """(task, task_options) from the run's config.json (flattened keys), when present."""
    config = run_dir / "config.json"
    if not config.exists():
        return None
    values = json.loads(config.read_text())
    options = {
        k.removeprefix("task_options."): (None if v == "None" else v)
        for k, v in values.items()
        if k.startswith("task_options.")
    }
    return (values["task"], options) if "task" in values else None


def attach_meta(rows: list[dict], task: str | None, options: dict, skip_unmatched: bool):
    """Each row's `meta`: its own, or the task row with the same prompt. Returns the rows
    kept and how many were dropped for having no match (only with skip_unmatched)."""
    if task is None or all("meta" in r for r in rows):
        return [{**r, "meta": dict(r.get("meta") or {})} for r in rows], 0
    task_obj = TASKS.get(task)(**options)
    index: dict[str, dict] = {}
    for split in ("train", "test"):
        try:
            split_rows = task_obj.rows(split)
        except (ValueError, KeyError):
            continue
        for row in split_rows:
            index.setdefault(_key(task_obj.prompt(row)), row)
    kept, missing = [], []
    for r in rows:
        meta = r.get("meta", index.get(_key(r.get("prompt", ""))))
        if meta is None:
            missing.append(r)
        else:
            kept.append({**r, "meta": dict(meta)})
    if missing and not skip_unmatched:
        raise ValueError(
            f"{len(missing)} of {len(rows)} completions have a prompt that is not in task "
            f"{task!r} (first: {str(missing[0].get('prompt'))[:80]!r}); pass --task with the "
            f"run's task, or --skip-unmatched to drop them"
        )
    return kept, len(missing)


def rescore(rows: list[dict], rewards: list[WeightedReward], timeout: float) -> dict[str, list]:
    """Each reward's score per row; the rows of one step form one batch."""
    scorer = Scorer(rewards, timeout=timeout)
    order: dict[Any, list[int]] = {}
    for i, r in enumerate(rows):
        order.setdefault(r.get("step"), []).append(i)
    scores: dict[str, list[float]] = {w.name: [math.nan] * len(rows) for w in rewards}
    try:
        for step, idx in order.items():
            groups = {}  # the file's group ids are per step; keep them distinct
            samples = [
                Sample(
                    prompt=rows[i].get("prompt", ""),
                    completion=rows[i]["completion"],
                    group=groups.setdefault(rows[i].get("group", i), len(groups)),
                    meta=rows[i]["meta"],
                    truncated=bool(rows[i].get("truncated", False)),
                )
                for i in idx
            ]
            try:
                raw = scorer(samples).raw
            except RewardError as exc:
                raise RewardError(f"step {step}: {exc}") from exc
            for name, values in raw.items():
                for i, v in zip(idx, values):
                    scores[name][i] = v
    finally:
        scorer.close()
    return scores


def disagreements(columns: dict[str, list[float]], threshold: float):
    """Per pair of non-constant columns: correlations and the rows one loves and the other
    rejects; per row: the largest gap and the pairs flagged. Returns (pairs, constant,
    row_gaps, row_flags)."""
    n = len(next(iter(columns.values())))
    norm, constant = {}, {}
    for name, values in columns.items():
        lo, hi = min(values), max(values)
        if hi == lo:
            constant[name] = lo
        else:
            norm[name] = [(v - lo) / (hi - lo) for v in values]
    pairs, gaps, flags = [], [0.0] * n, [[] for _ in range(n)]
    for a, b in combinations(norm, 2):
        diff = [x - y for x, y in zip(norm[a], norm[b])]
        a_over = [i for i, d in enumerate(diff) if d >= threshold]
        b_over = [i for i, d in enumerate(diff) if -d >= threshold]
        for i in a_over:
            flags[i].append(f"{a} loves, {b} rejects")
        for i in b_over:
            flags[i].append(f"{b} loves, {a} rejects")
        for i, d in enumerate(diff):
            gaps[i] = max(gaps[i], abs(d))
        pairs.append({
            "a": a, "b": b, "n": n,
            "pearson": _finite(stats.pearsonr(columns[a], columns[b])[0]) if n > 1 else None,
            "spearman": _finite(stats.spearmanr(columns[a], columns[b])[0]) if n > 1 else None,
            "a_loves_b_rejects": len(a_over),
            "b_loves_a_rejects": len(b_over),
        })  # fmt: skip
    return pairs, constant, gaps, flags


def replay_report(rows, columns, threshold: float) -> dict[str, Any]:
    """Everything replay prints or writes, as one JSON-able dict."""
    pairs, constant, gaps, flags = disagreements(columns, threshold)
    out_rows = []
    for i, r in enumerate(rows):
        out_rows.append({
            "step": r.get("step"), "group": r.get("group"),
            "prompt": r.get("prompt"), "completion": r["completion"],
            "scores": {name: columns[name][i] for name in columns},
            "max_gap": gaps[i], "disagreements": flags[i],
        })  # fmt: skip
    return jsonable(
        {"threshold": threshold, "pairs": pairs, "constant": constant, "rows": out_rows}
    )


def to_csv(report: dict[str, Any]) -> str:
    names = list(report["rows"][0]["scores"]) if report["rows"] else []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["step", "group", "prompt", "completion", *names, "max_gap", "disagreements"])
    for r in report["rows"]:
        prompt = r["prompt"] if isinstance(r["prompt"], str) else json.dumps(r["prompt"])
        scores = [r["scores"][n] for n in names]
        flags = "; ".join(r["disagreements"])
        writer.writerow([r["step"], r["group"], prompt, r["completion"], *scores,
                         f"{r['max_gap']:.4f}", flags])  # fmt: skip
    return buf.getvalue()


def print_table(report: dict[str, Any], top: int, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, width=160)
    pairs = Table(title=f"reward pairs (disagreement: normalised gap >= {report['threshold']})")
    for col in ("a", "b", "pearson", "spearman", "a loves, b rejects", "b loves, a rejects"):
        pairs.add_column(col)
    for p in report["pairs"]:
        fmt = [("-" if p[k] is None else f"{p[k]:.3f}") for k in ("pearson", "spearman")]
        pairs.add_row(p["a"], p["b"], *fmt, str(p["a_loves_b_rejects"]),
                      str(p["b_loves_a_rejects"]))  # fmt: skip
    console.print(pairs)
    for name, value in report["constant"].items():
        console.print(f"{name} gives every sample {value:g}: it cannot disagree")
    flagged = sorted((r for r in report["rows"] if r["disagreements"]),
                     key=lambda r: -r["max_gap"])[:top]  # fmt: skip
    if not flagged:
        console.print("no disagreements")
        return
    rows = Table(title=f"top {len(flagged)} disagreements")
    for col in ("step", "group", "completion", "scores", "disagreements"):
        rows.add_column(col, overflow="fold")
    for r in flagged:
        scores = ", ".join(f"{k}={v:g}" for k, v in r["scores"].items() if v is not None)
        rows.add_row(str(r["step"]), str(r["group"]), repr(r["completion"][:120]), scores,
                     "; ".join(r["disagreements"]))  # fmt: skip
    console.print(rows)


def run_replay(args: argparse.Namespace) -> int:
    try:
        path, rows = load_completions(args.path)
        task = (args.task, _task_options(args.task_option)) if args.task else run_task(path.parent)
        rows, dropped = attach_meta(rows, *(task or (None, {})), args.skip_unmatched)
        if dropped:
            print(f"replay: dropped {dropped} completions whose prompt is not in task "
                  f"{task[0]!r}", file=sys.stderr)  # fmt: skip
        if task is None and not any(r["meta"] for r in rows):
            print("replay: no task known (--task) and no meta in the file: rewards see "
                  "empty meta", file=sys.stderr)  # fmt: skip
        rewards = build_reward_set(parse_reward_set(args.rewards), parse_options(args.option))
        columns = rescore(rows, rewards, args.timeout)
    except (ValueError, OSError, RegistryError, RewardError) as exc:
        print(f"rewardkit replay: error: {exc}", file=sys.stderr)
        return 2
    if not args.no_recorded:
        for name in sorted({k for r in rows for k in (r.get("rewards") or {})}):
            columns[RECORDED + name] = [float((r.get("rewards") or {}).get(name, math.nan))
                                        for r in rows]  # fmt: skip
    columns = {k: v for k, v in columns.items() if not any(map(math.isnan, v))}
    if len(columns) < 2:
        print("rewardkit replay: error: need two reward columns to compare (name two rewards "
              "or keep the recorded ones)", file=sys.stderr)  # fmt: skip
        return 2
    report = replay_report(rows, columns, args.threshold)
    out_format = args.format
    if args.output:
        fmt = out_format if out_format != "table" else Path(args.output).suffix.lstrip(".")
        if fmt not in ("csv", "json"):
            print("rewardkit replay: error: --output needs a .csv or .json name or --format",
                  file=sys.stderr)  # fmt: skip
            return 2
        Path(args.output).write_text(to_csv(report) if fmt == "csv" else json.dumps(report))
        out_format = "table"
    if out_format == "table":
        print_table(report, args.top)
    else:
        sys.stdout.write(to_csv(report) if out_format == "csv" else json.dumps(report) + "\n")
    return 0


def _task_options(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"a task option is written KEY=VALUE, got {item!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def _key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
