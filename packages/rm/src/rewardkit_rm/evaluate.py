"""`rewardkit-rm eval`: how well a reward model orders held-out pairs.

- pairwise accuracy: the fraction of pairs with r(chosen) > r(rejected) (GPM: s > 0;
  ordinal: P(c ≻ r) > ½); ties count half;
- best-of-4 (RewardBench 2 style): one chosen against three rejected answers of the same
  prompt; correct when the chosen scores strictly highest (GPM: beats all three); chance
  is 25%. Problems with fewer than three rejected answers are left out (counted);
- per source, and overall; and per kind of rejected answer (a pair's `meta.kind`, which
  the verifier-built sources set: a HumanEval mutation, a BFCL perturbation, a chain-sum
  slip);
- length-bias probe: accuracy on the pairs whose rejected answer is longer (in
  characters), and on those where it is shorter; and the length baseline: the better of
  "the longer answer wins" and "the shorter answer wins" on the same pairs (the best any
  length-only rule does there);
- bootstrap 95% CIs that resample problems (prompts), not pairs, since the pairs of one
  problem share their chosen answer; and a paired CI of accuracy minus the length
  baseline. The baseline's rule (longer or shorter wins) is the one that is better on
  the pairs being evaluated, so it is an optimistic (hard to beat) baseline; best-of-4
  has it too (the chosen strictly the longest, or the shortest, of the four).
"""

from __future__ import annotations

import json
import random
import shlex
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit_rm.data import Pair, load_pairs, split_rows
from rewardkit_rm.scoring import head_outputs

CHANCE_BEST_OF_4 = 0.25


def _key(prompt: Any, response: str) -> str:
    return json.dumps([prompt, response], sort_keys=True)


def pair_preferences(
    rm, tokenizer, loss, pairs: Sequence[Pair], batch_size: int = 16, progress: bool = False
):
    """Each distinct (prompt, response) scored once: (preference of every pair, a function
    comparing any two scored responses, the number of truncated sequences)."""
    keys: dict[str, int] = {}
    prompts, responses = [], []
    for p in pairs:
        for response in (p.chosen, p.rejected):
            k = _key(p.prompt, response)
            if k not in keys:
                keys[k] = len(prompts)
                prompts.append(p.prompt)
                responses.append(response)
    out, gates, truncated = head_outputs(
        rm, tokenizer, prompts, responses, rm.spec.max_length, batch_size, progress
    )

    def compare(prompt: Any, a: str, b: str) -> float:
        i, j = keys[_key(prompt, a)], keys[_key(prompt, b)]
        gate = None if gates is None else gates[i : i + 1]
        return float(loss.preference(out[i : i + 1], out[j : j + 1], gate=gate)[0])

    prefs = [compare(p.prompt, p.chosen, p.rejected) for p in pairs]
    return prefs, compare, truncated


def correct(pref: float) -> float:
    return 1.0 if pref > 0 else 0.5 if pref == 0 else 0.0


def length_wins(pair: Pair, longer: bool) -> float:
    """The length rule's verdict on a pair: 1 if it picks the chosen, ½ on a tie."""
    c, r = len(pair.chosen), len(pair.rejected)
    if c == r:
        return 0.5
    return float((c > r) == longer)


def length_best_of_4(group: dict, longer: bool) -> float:
    """The length rule on a best-of-4 group: 1 if the chosen is strictly the longest
    (`longer`) or strictly the shortest answer, as the RM must strictly score highest."""
    c = len(group["chosen"])
    others = [len(r) for r in group["rejected"]]
    return float(all(c > n for n in others) if longer else all(c < n for n in others))


def best_of_4_groups(pairs: Sequence[Pair], seed: int = 0) -> tuple[list[dict], int]:
    """(groups of one chosen and three rejected answers per problem, problems left out)."""
    by_problem: dict[tuple, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_problem[(p.problem_id, _key(p.prompt, p.chosen))].append(p)
    rng = random.Random(seed)
    groups, left_out = [], 0
    for (pid, _), rows in sorted(by_problem.items(), key=lambda kv: kv[0]):
        rejected = list(dict.fromkeys(r.rejected for r in rows))
        if len(rejected) < 3:
            left_out += 1
            continue
        rng.shuffle(rejected)
        groups.append(
            {
                "problem_id": pid,
                "prompt": rows[0].prompt,
                "chosen": rows[0].chosen,
                "rejected": rejected[:3],
                "source": rows[0].source,
            }
        )
    return groups, left_out


def bootstrap(
    problems: Sequence[str],
    values: dict[str, Sequence[float]],
    stat: Callable[[dict[str, np.ndarray]], float],
    n: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile CI of `stat` over resamples of `problems` (with replacement);
    `values[name][k]` belongs to problem `problems[k]`."""
    if n <= 0 or not problems:
        return float("nan"), float("nan")
    ids = sorted(set(problems))
    index = {pid: i for i, pid in enumerate(ids)}
    owner = np.array([index[p] for p in problems])
    rng = np.random.default_rng(seed)
    arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    draws = []
    for _ in range(n):
        counts = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        weights = counts[owner]
        if weights.sum() == 0:
            continue
        draws.append(stat({k: (a, weights) for k, a in arrays.items()}))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def _mean(aw) -> float:
    a, w = aw
    return float((a * w).sum() / w.sum()) if w.sum() else float("nan")


def summarize(
    pairs: Sequence[Pair],
    prefs: Sequence[float],
    bo4: list[tuple[dict, float]],
    n_boot: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy, best-of-4, length probe and baseline of one set of pairs, with CIs."""
    acc = [correct(p) for p in prefs]
    longer = [length_wins(p, True) for p in pairs]
    shorter = [length_wins(p, False) for p in pairs]
    rejected_longer = [len(p.rejected) > len(p.chosen) for p in pairs]
    rejected_shorter = [len(p.rejected) < len(p.chosen) for p in pairs]
    problems = [p.problem_id for p in pairs]
    best_len = max(np.mean(longer), np.mean(shorter)) if pairs else float("nan")
    use_longer = bool(pairs) and np.mean(longer) >= np.mean(shorter)
    baseline = longer if use_longer else shorter
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "problems": len(set(problems)),
        "accuracy": float(np.mean(acc)) if acc else float("nan"),
        "accuracy_ci": bootstrap(problems, {"a": acc}, lambda v: _mean(v["a"]), n_boot, seed),
        "length_baseline": float(best_len),
        "length_baseline_rule": "longer wins" if use_longer else "shorter wins",
        "accuracy_minus_length_ci": bootstrap(
            problems,
            {"a": acc, "b": baseline},
            lambda v: _mean(v["a"]) - _mean(v["b"]),
            n_boot,
            seed,
        ),
        "rejected_longer": {
            "pairs": int(sum(rejected_longer)),
            "accuracy": _subset_mean(acc, rejected_longer),
        },
        "rejected_shorter": {
            "pairs": int(sum(rejected_shorter)),
            "accuracy": _subset_mean(acc, rejected_shorter),
        },
    }
    if bo4:
        wins = [w for _, w in bo4]
        bo4_problems = [g["problem_id"] for g, _ in bo4]
        out["best_of_4"] = float(np.mean(wins))
        out["best_of_4_ci"] = bootstrap(
            bo4_problems, {"w": wins}, lambda v: _mean(v["w"]), n_boot, seed
        )
        out["best_of_4_groups"] = len(bo4)
        base = [length_best_of_4(g, use_longer) for g, _ in bo4]
        out["length_baseline_best_of_4"] = float(np.mean(base))
        out["best_of_4_minus_length_ci"] = bootstrap(
            bo4_problems,
            {"w": wins, "b": base},
            lambda v: _mean(v["w"]) - _mean(v["b"]),
            n_boot,
            seed,
        )
    return out


def _subset_mean(values: Sequence[float], mask: Sequence[bool]) -> float | None:
    picked = [v for v, m in zip(values, mask, strict=True) if m]
    return float(np.mean(picked)) if picked else None


@torch.no_grad()
def evaluate_pairs(
    rm,
    tokenizer,
    loss,
    pairs: Sequence[Pair],
    batch_size: int = 16,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The full report: overall and per source (see the module docstring)."""
    groups, left_out = best_of_4_groups(pairs, seed)
    extra = [
        Pair(g["prompt"], g["chosen"], r, problem_id=g["problem_id"], source=g["source"])
        for g in groups
        for r in g["rejected"]
    ]
    prefs, compare, truncated = pair_preferences(
        rm, tokenizer, loss, [*pairs, *extra], batch_size, progress
    )
    prefs = prefs[: len(pairs)]
    bo4 = [
        (g, float(all(compare(g["prompt"], g["chosen"], r) > 0 for r in g["rejected"])))
        for g in groups
    ]
    report = {
        "overall": summarize(pairs, prefs, bo4, n_boot, seed),
        "sources": {},
        "best_of_4_chance": CHANCE_BEST_OF_4,
        "best_of_4_left_out_problems": left_out,
        "truncated_sequences": truncated,
    }
    for source in sorted({p.source for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p.source == source]
        report["sources"][source] = summarize(
            [pairs[i] for i in idx],
            [prefs[i] for i in idx],
            [(g, w) for g, w in bo4 if g["source"] == source],
            n_boot,
            seed,
        )
    by_kind = defaultdict(list)  # which kinds of rejected answer the RM misses
    for i, p in enumerate(pairs):
        if "kind" in p.meta:
            by_kind[f"{p.source} / {p.meta['kind']}"].append(i)
    if by_kind:
        report["kinds"] = {
            name: summarize([pairs[i] for i in idx], [prefs[i] for i in idx], [], n_boot, seed)
            for name, idx in sorted(by_kind.items())
        }
    return report


def kind_table(report: dict[str, Any]) -> str:
    """Accuracy per kind of rejected answer (a pair's `meta.kind`), as markdown; empty
    when no pair names its kind."""
    if not report.get("kinds"):
        return ""
    lines = [
        "| source / kind of rejected | pairs | problems | accuracy (95% CI) |",
        "|---|---|---|---|",
    ]
    for name, r in report["kinds"].items():
        low, high = r["accuracy_ci"]
        lines.append(
            f"| {name} | {r['pairs']} | {r['problems']} | {r['accuracy']:.3f} "
            f"[{low:.3f}, {high:.3f}] |"
        )
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    """The report as a markdown table (one row per source, then overall)."""

    def ci(pair) -> str:
        return f"[{pair[0]:.3f}, {pair[1]:.3f}]"

    def opt(v) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = [
        "| source | pairs | problems | accuracy (95% CI) | length baseline "
        "| acc − length (95% CI) | best-of-4 (95% CI) | best-of-4 length baseline "
        "| bo4 − length (95% CI) | acc, rejected longer | acc, rejected shorter |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*report["sources"].items(), ("overall", report["overall"])]
    for name, r in rows:
        if "best_of_4" in r:
            bo4 = (
                f"{r['best_of_4']:.3f} {ci(r['best_of_4_ci'])} | "
                f"{r['length_baseline_best_of_4']:.3f} | {ci(r['best_of_4_minus_length_ci'])}"
            )
        else:
            bo4 = "– | – | –"
        lines.append(
            f"| {name} | {r['pairs']} | {r['problems']} | {r['accuracy']:.3f} "
            f"{ci(r['accuracy_ci'])} | {r['length_baseline']:.3f} "
            f"({r['length_baseline_rule']}) | {ci(r['accuracy_minus_length_ci'])} | {bo4} | "
            f"{opt(r['rejected_longer']['accuracy'])} (n={r['rejected_longer']['pairs']}) | "
            f"{opt(r['rejected_shorter']['accuracy'])} (n={r['rejected_shorter']['pairs']}) |"
        )
    return "\n".join(lines)


def limit_problems(pairs: list[Pair], limit: int, seed: int = 0) -> list[Pair]:
    """At most `limit` problems per source (a seeded sample), all their pairs kept."""
    if not limit:
        return pairs
    keep: set[str] = set()
    for source in sorted({p.source for p in pairs}):
        ids = sorted({p.problem_id for p in pairs if p.source == source})
        keep |= set(random.Random(seed).sample(ids, min(limit, len(ids))))
    return [p for p in pairs if p.problem_id in keep]


def evaluate_cli(args) -> int:
    from rewardkit_rm.data import LoadReport
    from rewardkit_rm.model import load_reward_model

    fraction = args.test_fraction
    run_config = Path(args.model).parent / "config.json"
    if fraction is None:  # the split the model was trained with, when its run says
        saved = json.loads(run_config.read_text()) if run_config.is_file() else {}
        fraction = saved.get("test_fraction", 0.2)
    report_load = LoadReport()
    pairs: list[Pair] = []
    for path in args.data:
        rows = load_pairs(path, report_load)
        pairs += rows if args.split == "all" else split_rows(rows, fraction)[args.split]
    pairs = limit_problems(pairs, args.limit)
    if not pairs:
        raise ValueError(f"no pairs in the {args.split} split of {args.data}")
    rm, tokenizer, loss = load_reward_model(args.model)
    report = evaluate_pairs(
        rm, tokenizer, loss, pairs, args.batch_size, args.bootstrap, progress=True
    )
    report |= {
        "command": shlex.join(["rewardkit-rm", *getattr(args, "argv", sys.argv[1:])]),
        "model": str(args.model),
        "data": [str(p) for p in args.data],
        "split": args.split,
        "test_fraction": fraction,
        "identical_pairs_skipped": report_load.identical,
    }
    print(table(report))
    if kinds := kind_table(report):
        print("\n" + kinds)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0
