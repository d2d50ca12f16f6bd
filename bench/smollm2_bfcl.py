"""ToolRL's reward against a binary one: GRPO on BFCL tool calls with SmolLM2-135M-Instruct.

Runs, one at a time, in the order given (`--runs toolrl:0 binary:0 toolrl:1 ...`):
`rewardkit train --config configs/tools/smollm2_bfcl_<reward>.yaml` in a subprocess (wall
time, CPU seconds, `uptime` and OMP_NUM_THREADS recorded). Then greedy completions of the
base model and of each run's `final/` on the same held-out BFCL rows (206 simple_python and
multiple rows, disjoint from training by a hash of the row id), judged per row by
`rewardkit_tools.bfcl_scoring` (BFCL acceptance, exact match) and ToolRL's format score.

Reported per run: held-out acceptance before and after, the gain with a paired bootstrap
95% CI over rows, McNemar's discordant counts, the same for exact match. Between rewards,
paired by seed and row: the difference of the final acceptances with its CI. Mechanism: the
share of training groups whose rewards had zero variance, under the run's own reward and
under the other reward on the same samples (every run scores both; completions.jsonl).
Writes bench/results/<name>.json and .png.

    uv run --no-sync python bench/smollm2_bfcl.py --runs toolrl:0 binary:0 toolrl:1 toolrl:2
    uv run --no-sync python bench/smollm2_bfcl.py --runs ... --reuse   # evaluate finished runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from timed_run import history, paired_bootstrap, timed_train, uptime  # bench/timed_run.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = {
    "toolrl": "configs/tools/smollm2_bfcl_toolrl.yaml",
    "binary": "configs/tools/smollm2_bfcl_binary.yaml",
}
REWARD_NAMES = {"toolrl": "tools.toolrl", "binary": "tools.bfcl_binary"}
BASE = "smollm2-135m-instruct"


def train(config: str, seed: int, run_dir: Path, extra: list[str]) -> dict:
    return timed_train(config, [f"seed={seed}", *extra], run_dir, ROOT)


def heldout(config_path: str, model: str, out: Path, limit: int = 0, chunk: int = 32) -> dict:
    """Greedy completions of `model` on the held-out rows, judged per row; cached in `out`."""
    if out.exists():
        return json.loads(out.read_text())
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.rollout import encode_prompts
    from rewardkit.trainer.trainer import GRPOTrainer
    from rewardkit_tools.bfcl_scoring import evaluate, judge, predicted_calls
    from rewardkit_tools.toolrl import format_score

    overrides = [f"model={model}", "lora_r=0", "max_steps=0", "report_to=[]", "progress=false"]
    config = GRPOConfig.load(config_path, [*overrides, f"output_dir={tempfile.mkdtemp()}"])
    trainer = GRPOTrainer(config)
    rows = trainer.task.rows("test")[: limit or None]
    # chunks of similar prompt length (less left padding); the same chunks for every model
    prompts = [trainer.task.prompt(r) for r in rows]
    ids, _ = encode_prompts(trainer.tokenizer, prompts, config.max_prompt_length, config.task)
    lengths = [len(x) for x in ids]
    order = sorted(range(len(rows)), key=lambda i: (lengths[i], rows[i]["id"]))
    completions: dict[str, str] = {}
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(0, len(order), chunk):
        part = [rows[i] for i in order[k : k + chunk]]
        for row, s in zip(part, trainer.rollout(part, greedy=True, generations=1), strict=True):
            completions[row["id"]] = s.completion
    per_row = {}
    for row in rows:
        text = completions[row["id"]]
        exact, accepted = judge(row, text)
        per_row[row["id"]] = {
            "category": row["category"],
            "accepted": bool(accepted),
            "exact": bool(exact),
            "toolrl_format": format_score(text, row["ground_truth"]),
            "parsed": predicted_calls(text) not in (None, []),
            "completion": text,
        }
    result = {
        "model": model,
        "rows": len(rows),
        "report": evaluate(rows, completions),
        "per_row": per_row,
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "uptime_after": uptime(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result


def column(result: dict, ids: list[str], key: str) -> np.ndarray:
    return np.array([float(result["per_row"][i][key]) for i in ids])


def paired(before: dict, after: dict, key: str, resamples: int) -> dict:
    ids = sorted(before["per_row"])
    b, a = column(before, ids, key), column(after, ids, key)
    return {
        "before": b.mean(),
        "after": a.mean(),
        "gain": a.mean() - b.mean(),
        "gain_ci95_paired_bootstrap": paired_bootstrap(b, a, resamples),
        "only_before": int(((b == 1) & (a == 0)).sum()),
        "only_after": int(((b == 0) & (a == 1)).sum()),
    }


def zero_variance(run_dir: Path) -> dict:
    """Share of training groups whose rewards did not vary, under each logged reward."""
    groups: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in (run_dir / "completions.jsonl").read_text().splitlines():
        r = json.loads(line)
        for name, value in r["rewards"].items():
            groups[(r["step"], r["group"])][name].append(value)
    names = sorted({n for g in groups.values() for n in g})
    share = {n: float(np.mean([np.std(g[n]) < 1e-6 for g in groups.values()])) for n in names}
    return {"groups": len(groups), "share": share}


def plot(runs: dict[str, dict], path: Path, n_rows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    names = list(runs)
    colours = {"toolrl": "tab:blue", "binary": "tab:orange"}
    for k, name in enumerate(names):
        r = runs[name]["acceptance"]
        lo, hi = r["gain_ci95_paired_bootstrap"]
        colour = colours[runs[name]["reward"]]
        a.bar(k, r["gain"] * 100, color=colour, alpha=0.8)
        a.errorbar(
            k,
            r["gain"] * 100,
            [[(r["gain"] - lo) * 100], [(hi - r["gain"]) * 100]],
            color="k",
            capsize=4,
        )
        a.text(k, 0, f"{r['before']:.1%}\n→{r['after']:.1%}", ha="center", va="bottom", fontsize=8)
    a.axhline(0, color="k", lw=0.8)
    a.set_xticks(range(len(names)), names, rotation=20)
    a.set(
        ylabel="held-out BFCL acceptance gain (points)",
        title=f"greedy, {n_rows} held-out rows, 95% paired bootstrap CI",
    )
    for name in names:
        h = history(Path(runs[name]["run_dir"]))
        tr = [
            (r["step"], r["reward/tools.bfcl_binary/mean"])
            for r in h
            if "reward/tools.bfcl_binary/mean" in r
        ]
        b.plot(*zip(*tr), color=colours[runs[name]["reward"]], alpha=0.8, label=name)
    b.set(
        xlabel="GRPO step",
        ylabel="train exact-match rate (samples at T=0.5)",
        title="sampled exact match (both runs score it)",
    )
    width = 0.38
    for k, name in enumerate(names):
        share = runs[name]["zero_variance"]["share"]
        c.bar(
            k - width / 2,
            share["tools.toolrl"],
            width,
            color="tab:blue",
            label="under tools.toolrl" if k == 0 else None,
        )
        c.bar(
            k + width / 2,
            share["tools.bfcl_binary"],
            width,
            color="tab:orange",
            label="under tools.bfcl_binary" if k == 0 else None,
        )
    c.set_xticks(range(len(names)), names, rotation=20)
    c.set(
        ylabel="share of groups with zero reward variance",
        ylim=(0, 1),
        title="training groups (same samples, both rewards)",
    )
    for ax in (b, c):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--runs",
        nargs="+",
        default=["toolrl:0", "binary:0", "toolrl:1", "toolrl:2"],
        help="reward:seed, trained in this order (reward: toolrl or binary)",
    )
    p.add_argument("--parent", default="runs/smollm2_bfcl", help="folder of <reward>/seed<k>/")
    p.add_argument("--reuse", action="store_true", help="skip training runs that have final/")
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--name", default="smollm2_bfcl")
    p.add_argument("--set", nargs="*", default=[], help="config overrides for training (smoke)")
    p.add_argument("--limit", type=int, default=0, help="first n held-out rows only (smoke)")
    args = p.parse_args()
    parent = ROOT / args.parent
    specs = []
    for spec in args.runs:
        reward, _, seed = spec.partition(":")
        if reward not in CONFIGS or not seed.isdigit():
            p.error(f"--runs takes reward:seed with reward in {sorted(CONFIGS)}, got {spec!r}")
        specs.append((reward, int(seed)))
    base = heldout(CONFIGS["toolrl"], BASE, parent / "base" / "heldout.json", args.limit)
    print(json.dumps({"base": base["report"]["overall"]}), flush=True)
    runs: dict[str, dict] = {}
    finals: dict[tuple[str, int], dict] = {}
    for reward, seed in specs:
        run_dir = parent / reward / f"seed{seed}"
        if not (args.reuse and (run_dir / "final" / "config.json").exists()):
            train(CONFIGS[reward], seed, run_dir, args.set)
        wall = json.loads((run_dir / "wall.json").read_text())
        after = heldout(
            CONFIGS[reward], str(run_dir / "final"), run_dir / "heldout.json", args.limit
        )
        finals[(reward, seed)] = after
        h = history(run_dir)
        steps = [r for r in h if "time/step" in r]
        runs[f"{reward}:{seed}"] = {
            "reward": reward,
            "seed": seed,
            "run_dir": str(run_dir.relative_to(ROOT)),
            "acceptance": paired(base, after, "accepted", args.resamples),
            "exact_match": paired(base, after, "exact", args.resamples),
            "toolrl_format": paired(base, after, "toolrl_format", args.resamples),
            "parsed_call": paired(base, after, "parsed", args.resamples),
            "per_category_after": after["report"],
            "zero_variance": zero_variance(run_dir),
            "mean_frac_zero_variance_groups_own_reward": float(
                np.mean([r["frac_zero_variance_groups"] for r in steps])
            ),
            "steps": len(steps),
            "train_wall_s": wall["wall_s"],
            "train_cpu_s": wall["cpu_s"],
            "train_uptime_before": wall["uptime_before"],
            "train_uptime_after": wall["uptime_after"],
            "omp_num_threads": wall["omp_num_threads"],
            "median_step_s": float(np.median([r["time/step"] for r in steps])),
            "heldout_eval_wall_s": after["wall_s"],
            "examples": [
                {
                    "id": i,
                    "before": base["per_row"][i]["completion"],
                    "after": after["per_row"][i]["completion"],
                }
                for i in sorted(base["per_row"])[:5]
            ],
        }
        summary = {k: v for k, v in runs[f"{reward}:{seed}"].items() if k != "examples"}
        print(json.dumps(summary, default=float), flush=True)
    comparison = {}
    ids = sorted(base["per_row"])
    for seed in sorted(
        {s for r, s in specs if r == "toolrl"} & {s for r, s in specs if r == "binary"}
    ):
        t = column(finals[("toolrl", seed)], ids, "accepted")
        b = column(finals[("binary", seed)], ids, "accepted")
        comparison[f"seed{seed}"] = {
            "toolrl_after": t.mean(),
            "binary_after": b.mean(),
            "toolrl_minus_binary": t.mean() - b.mean(),
            "ci95_paired_bootstrap": paired_bootstrap(b, t, args.resamples, seed),
            "only_toolrl": int(((t == 1) & (b == 0)).sum()),
            "only_binary": int(((t == 0) & (b == 1)).sum()),
        }
    result = {
        "command": "uv run --no-sync python bench/smollm2_bfcl.py " + " ".join(sys.argv[1:]),
        "configs": {k: (ROOT / v).read_text() for k, v in CONFIGS.items()},
        "heldout_rows": base["rows"],
        "base": {
            "report": base["report"],
            "toolrl_format": float(np.mean(column(base, ids, "toolrl_format"))),
            "parsed_call": float(np.mean(column(base, ids, "parsed"))),
            "eval_wall_s": base["wall_s"],
            "eval_cpu_s": base["cpu_s"],
        },
        "runs": runs,
        "toolrl_vs_binary_by_seed": comparison,
        "uptime_at_end": uptime(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=float))
    plot(runs, RESULTS / f"{args.name}.png", base["rows"])
    print(json.dumps({"toolrl_vs_binary_by_seed": comparison}, default=float))


if __name__ == "__main__":
    main()
