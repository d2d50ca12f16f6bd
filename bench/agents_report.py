"""Gathers the per-run files of bench/agents_experiment.py into JSON, PNG and Markdown tables.

Every score is a (seeds, layouts) array of held-out success rates; CIs are hierarchical
bootstrap intervals over seeds and layouts (`rewardkit_agents.stats`). Differences are
paired: an estimator against its own start (the same warm-started checkpoint, the same
layouts, the same sampling seed), and two estimators against each other at the same seed.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit_agents.stats import hierarchical_bootstrap

METHOD_ORDER = ["grpo", "gigpo", "salt"]


def load_runs(folder: Path) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """{env: {method: {seed: run record}}}."""
    runs: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        runs.setdefault(r["env"], {}).setdefault(r["method"], {})[r["seed"]] = r
    return runs


def ci(values) -> dict[str, float]:
    mean, low, high = hierarchical_bootstrap(values)
    return {"mean": round(mean, 4), "low": round(low, 4), "high": round(high, 4)}


def summarise(runs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for env, methods in runs.items():
        names = [m for m in METHOD_ORDER if m in methods]
        seeds = sorted(set.intersection(*(set(methods[m]) for m in names)))
        steps = methods[names[0]][seeds[0]]["eval_steps"]
        scores = {  # method -> (seeds, evals, layouts)
            m: np.array([methods[m][s]["held_out_sampled"] for s in seeds]) for m in names
        }
        greedy = {
            m: np.array([methods[m][s]["held_out_greedy_start_end"] for s in seeds]) for m in names
        }
        env_out: dict[str, Any] = {"seeds": seeds, "eval_steps": steps, "methods": {}}
        for m in names:
            x = scores[m]
            train = np.array([methods[m][s]["train_success"] for s in seeds])
            env_out["methods"][m] = {
                "held_out_curve": [ci(x[:, k]) for k in range(len(steps))],
                "held_out_per_seed": x.mean(axis=2).round(4).tolist(),
                "greedy_start_end": [ci(greedy[m][:, 0]), ci(greedy[m][:, -1])],
                "gain_vs_start": ci(x[:, -1] - x[:, 0]),
                "gain_vs_start_mean_after_start": ci(x[:, 1:].mean(axis=1) - x[:, 0]),
                "train_success_first_last50": [
                    round(float(train[:, :50].mean()), 4),
                    round(float(train[:, -50:].mean()), 4),
                ],
                "seconds_per_run": round(
                    float(np.mean([methods[m][s]["seconds"] for s in seeds])), 1
                ),
                "warm_start": [methods[m][s]["warm_start"] for s in seeds],
            }
        env_out["pairwise_final"] = {
            f"{a}-{b}": ci(scores[a][:, -1] - scores[b][:, -1]) for a, b in combinations(names, 2)
        }
        env_out["pairwise_mean_after_start"] = {
            f"{a}-{b}": ci(scores[a][:, 1:].mean(axis=1) - scores[b][:, 1:].mean(axis=1))
            for a, b in combinations(names, 2)
        }
        out[env] = env_out
    return out


def fmt(c: dict[str, float]) -> str:
    return f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"


def rate(c: dict[str, float]) -> str:
    return f"{c['mean']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"


def plot(summary: dict[str, Any], references: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(5.5 * len(summary), 3.8), squeeze=False)
    for ax, (env, res) in zip(axes[0], summary.items(), strict=True):
        steps = res["eval_steps"]
        for m, r in res["methods"].items():
            mean = [c["mean"] for c in r["held_out_curve"]]
            ax.plot(steps, mean, marker="o", ms=3, label=m)
            ax.fill_between(
                steps,
                [c["low"] for c in r["held_out_curve"]],
                [c["high"] for c in r["held_out_curve"]],
                alpha=0.2,
            )
        ref = references.get(env, {})
        if "random_valid_actions" in ref:
            ax.axhline(
                float(np.mean(ref["random_valid_actions"])), color="grey", ls="--", label="random"
            )
        if "flawed_expert" in ref:
            ax.axhline(ref["flawed_expert"], color="black", ls=":", label="flawed expert")
        ax.set_title(f"{env}: held-out success ({len(res['seeds'])} seeds, 95% CI)")
        ax.set_xlabel("RL step")
        ax.set_ylabel("success rate (sampled)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def tables(summary: dict[str, Any], references: dict[str, Any]) -> list[str]:
    lines = [
        "| environment | policy | held-out success, start | end (step "
        + "/".join(str(r["eval_steps"][-1]) for r in summary.values())
        + ") | end - start | greedy start -> end | train success steps 1-50 -> last 50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for env, res in summary.items():
        ref = references.get(env, {})
        if ref:
            lines.append(
                f"| {env} | random valid actions | {np.mean(ref['random_valid_actions']):.3f} "
                "| | | | |"
            )
            lines.append(f"| {env} | flawed expert | {ref['flawed_expert']:.3f} | | | | |")
        for m, r in res["methods"].items():
            curve = r["held_out_curve"]
            g0, g1 = r["greedy_start_end"]
            t0, t1 = r["train_success_first_last50"]
            lines.append(
                f"| {env} | {m} | {rate(curve[0])} | {rate(curve[-1])} | "
                f"{fmt(r['gain_vs_start'])} | {g0['mean']:.3f} -> {g1['mean']:.3f} | "
                f"{t0:.3f} -> {t1:.3f} |"
            )
    lines += [
        "",
        "Paired differences between estimators (same seed, same layouts), held-out success at "
        "the last evaluation, and averaged over every evaluation after the start (area under the "
        "curve: learning speed):",
        "",
        "| environment | difference | final | mean over evaluations after the start |",
        "|---|---|---|---|",
    ]
    for env, res in summary.items():
        for pair, c in res["pairwise_final"].items():
            lines.append(
                f"| {env} | {pair} | {fmt(c)} | {fmt(res['pairwise_mean_after_start'][pair])} |"
            )
    return lines


def report(folder: Path, out: Path, references: dict[str, Any], command: str, machine: str):
    runs = load_runs(folder)
    summary = summarise(runs)
    result = {
        "command": command,
        "machine": machine,
        "references": references,
        "summary": summary,
        "runs": {
            env: {m: {str(s): r for s, r in seeds.items()} for m, seeds in methods.items()}
            for env, methods in runs.items()
        },
    }
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(summary, references, out.with_suffix(".png"))
    text = "\n".join(tables(summary, references))
    out.with_name(out.name + "_tables.md").write_text(text + "\n")
    print(text)
