"""Code on a real model: GRPO with VeRPO, a binary reward or a learned RM, SmolLM2-135M.

For each reward (configs/code/smollm2_functions.yaml: code.verpo; ..._binary.yaml:
code.binary with GRPO's advantage; ..._rm.yaml: rm.score, `--rm-seeds`) and seed: `rewardkit
train` in a subprocess (wall time, CPU seconds and `uptime` recorded), then the run's
`final/` answers every held-out task greedily and each answer runs in the sandbox. The base
model is scored once the same way (greedy decoding is deterministic). Metrics per task:
pass@1 (every test passes) and the per-test pass rate. For each run: the gain over the base
with a paired bootstrap 95% CI over tasks. For each seed that has both rewards: VeRPO's gain
minus binary's, paired by task. Writes bench/results/code_functions_smollm2.{json,png,md}.

    uv run --no-sync python bench/code_functions_smollm2.py --seeds 0 1 2 --binary-seeds 0
    uv run --no-sync python bench/code_functions_smollm2.py --reuse ...   # score finished runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timed_run import history, paired_bootstrap, timed_train, uptime  # bench/timed_run.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONFIGS = {
    "verpo": "configs/code/smollm2_functions.yaml",
    "binary": "configs/code/smollm2_functions_binary.yaml",
    "rm": "configs/code/smollm2_functions_rm.yaml",  # needs the trained RM it names
}
REWARD_NAMES = {"verpo": "code.verpo", "binary": "code.binary", "rm": "rm.score"}


def train(config: str, seed: int, run_dir: Path) -> dict:
    # the trainer's own greedy evals would repeat the before/after scoring below: off
    return timed_train(config, [f"seed={seed}", "eval_every=0", "eval_size=0"], run_dir, ROOT)


def score(model: str, cache: Path) -> dict:
    """Greedy answers of `model` to every held-out task, run in the sandbox: per task,
    pass (all tests) and the fraction of tests passed. Cached in `cache`."""
    if cache.exists():
        return json.loads(cache.read_text())
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer
    from rewardkit_code.execution import CodeExecutor

    config = GRPOConfig.load(
        CONFIGS["verpo"],
        [
            f"model={model}",
            "lora_r=0",
            "max_steps=0",
            "report_to=[]",
            "progress=false",
            f"output_dir={tempfile.mkdtemp()}",
        ],
    )
    trainer = GRPOTrainer(config)
    rows = trainer.task.rows("test")
    start = time.perf_counter()
    samples = trainer.rollout(rows, greedy=True, generations=1)
    executor = CodeExecutor(**config.task_options["executor"])
    outcomes = executor.outcomes([(s.completion, r) for s, r in zip(samples, rows, strict=True)])
    result = {
        "model": model,
        "tasks": [r["task_id"] for r in rows],
        "passed": [all(o.passed for o in outs) for outs in outcomes],
        "test_pass_rate": [sum(o.passed for o in outs) / len(outs) for outs in outcomes],
        "completions": [s.completion for s in samples],
        "seconds": time.perf_counter() - start,
        "uptime": uptime(),
    }
    cache.write_text(json.dumps(result))
    return result


def dead_groups(run_dir: Path, reward: str) -> dict:
    """From the logged rollouts (completions.jsonl, every `log_completions_every` steps): the
    share of groups whose reward had zero variance, and the share whose advantages were all
    zero (no gradient). With VeRPO the two differ: R_traj is the binary reward, and the
    per-test term can still separate samples of a group that all pass or all fail."""
    groups: dict[tuple, list] = {}
    for line in (run_dir / "completions.jsonl").read_text().splitlines():
        row = json.loads(line)
        groups.setdefault((row["step"], row["group"]), []).append(row)
    rewards = [[r["rewards"][REWARD_NAMES[reward]] for r in g] for g in groups.values()]
    advantages = [[r["advantage"] for r in g] for g in groups.values()]
    return {
        "logged_groups": len(groups),
        "zero_reward_variance": float(np.mean([max(r) - min(r) < 1e-9 for r in rewards])),
        "zero_advantage": float(np.mean([max(map(abs, a)) < 1e-6 for a in advantages])),
    }


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"verpo": "tab:blue", "binary": "tab:orange", "rm": "tab:green"}
    for (reward, seed), run_dir in runs.items():
        h = [r for r in history(run_dir) if "time/step" in r]
        key = f"reward/{REWARD_NAMES[reward]}/mean"
        a.plot(
            [r["step"] for r in h],
            [r[key] for r in h],
            color=colours[reward],
            alpha=0.7,
            label=f"{reward} seed {seed}",
        )
        b.plot(
            [r["step"] for r in h],
            [r["frac_zero_variance_groups"] for r in h],
            color=colours[reward],
            alpha=0.7,
            label=f"{reward} seed {seed}",
        )
    a.set(
        xlabel="GRPO step",
        ylabel="train reward (mean of 32 samples, T 0.7)",
        title="SmolLM2-135M-Instruct, code.functions (VeRPO: R_traj; binary: all tests)",
    )
    b.set(
        xlabel="GRPO step",
        ylabel="share of groups with zero reward variance",
        title="groups whose reward had zero variance (R_traj = binary)",
    )
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="VeRPO seeds")
    p.add_argument("--binary-seeds", type=int, nargs="*", default=[0])
    p.add_argument("--rm-seeds", type=int, nargs="*", default=[], help="rm.score seeds")
    p.add_argument("--runs", default="runs/code_functions")
    p.add_argument("--reuse", action="store_true", help="score runs that have final/")
    args = p.parse_args()
    parent = ROOT / args.runs
    parent.mkdir(parents=True, exist_ok=True)
    # by seed, VeRPO then binary then rm: an interrupted bench still has paired runs
    by_reward = {"verpo": args.seeds, "binary": args.binary_seeds, "rm": args.rm_seeds}
    plan = [
        (reward, seed)
        for seed in sorted(set().union(*by_reward.values()))
        for reward, seeds in by_reward.items()
        if seed in seeds
    ]
    runs = {(reward, seed): parent / f"{reward}_seed{seed}" for reward, seed in plan}
    base = score("smollm2-135m-instruct", parent / "base_scores.json")
    per_run, scores = {}, {}
    for (reward, seed), run_dir in runs.items():
        if not (args.reuse and (run_dir / "final" / "config.json").exists()):
            train(CONFIGS[reward], seed, run_dir)
        wall = json.loads((run_dir / "wall.json").read_text())
        after = scores[reward, seed] = score(str(run_dir / "final"), run_dir / "final_scores.json")
        h = history(run_dir)
        per_run[f"{reward}_seed{seed}"] = {
            "pass_at_1_before": float(np.mean(base["passed"])),
            "pass_at_1_after": float(np.mean(after["passed"])),
            "pass_at_1_gain_ci95": paired_bootstrap(base["passed"], after["passed"]),
            "test_pass_rate_before": float(np.mean(base["test_pass_rate"])),
            "test_pass_rate_after": float(np.mean(after["test_pass_rate"])),
            "test_pass_rate_gain_ci95": paired_bootstrap(
                base["test_pass_rate"], after["test_pass_rate"]
            ),
            "tasks_only_before": int(
                sum(b and not a for b, a in zip(base["passed"], after["passed"]))
            ),
            "tasks_only_after": int(
                sum(a and not b for b, a in zip(base["passed"], after["passed"]))
            ),
            "zero_variance_group_share": float(
                np.mean([r["frac_zero_variance_groups"] for r in h if "time/step" in r])
            ),
            "logged_groups": dead_groups(run_dir, reward),
            "median_step_s": float(np.median([r["time/step"] for r in h if "time/step" in r])),
            "train_wall_s": wall["wall_s"],
            "train_cpu_s": wall["cpu_s"],
            "train_uptime_before": wall["uptime_before"],
            "train_uptime_after": wall["uptime_after"],
            "train_omp_num_threads": wall["omp_num_threads"],
        }
        print(json.dumps({f"{reward}_seed{seed}": per_run[f"{reward}_seed{seed}"]}), flush=True)
    comparison, rm_comparison = {}, {}
    for reward, table in (("verpo", comparison), ("rm", rm_comparison)):
        for seed in sorted(set(by_reward[reward]) & set(args.binary_seeds)):
            v, b = scores[reward, seed], scores["binary", seed]
            table[f"seed{seed}"] = {
                f"pass_at_1_{reward}_minus_binary": float(
                    np.mean(v["passed"]) - np.mean(b["passed"])
                ),
                "ci95": paired_bootstrap(b["passed"], v["passed"]),
                f"test_pass_rate_{reward}_minus_binary": float(
                    np.mean(v["test_pass_rate"]) - np.mean(b["test_pass_rate"])
                ),
                "test_pass_rate_ci95": paired_bootstrap(b["test_pass_rate"], v["test_pass_rate"]),
            }
    result = {
        "command": "uv run --no-sync python bench/code_functions_smollm2.py "
        + " ".join(sys.argv[1:]),
        "configs": {k: (ROOT / CONFIGS[k]).read_text() for k, s in by_reward.items() if s},
        "held_out_tasks": len(base["passed"]),
        "base": {
            "pass_at_1": float(np.mean(base["passed"])),
            "test_pass_rate": float(np.mean(base["test_pass_rate"])),
            "eval_seconds": base["seconds"],
            "uptime": base["uptime"],
        },
        "runs": per_run,
        "verpo_vs_binary_paired_by_seed": comparison,
        "rm_vs_binary_paired_by_seed": rm_comparison,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "code_functions_smollm2.json").write_text(json.dumps(result, indent=1))
    plot(runs, RESULTS / "code_functions_smollm2.png")
    lines = [
        "# Code on SmolLM2-135M-Instruct: VeRPO, binary and learned (rm.score) rewards (code.functions)",
        "",
        f"Command: `{result['command']}`. Held-out: {result['held_out_tasks']} tasks, greedy, "
        "every answer run in the docker sandbox.",
        "",
        "| run | pass@1 before -> after | gain, 95% CI | per-test pass rate before -> after "
        "| gain, 95% CI | zero-variance groups (all steps) | logged groups: zero variance / "
        "zero advantage | train wall (CPU) s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in per_run.items():
        lo, hi = r["pass_at_1_gain_ci95"]
        tlo, thi = r["test_pass_rate_gain_ci95"]
        lines.append(
            f"| {name} | {r['pass_at_1_before']:.3f} -> {r['pass_at_1_after']:.3f} | "
            f"{r['pass_at_1_after'] - r['pass_at_1_before']:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{r['test_pass_rate_before']:.3f} -> {r['test_pass_rate_after']:.3f} | "
            f"{r['test_pass_rate_after'] - r['test_pass_rate_before']:+.3f} [{tlo:+.3f}, {thi:+.3f}] | "
            f"{r['zero_variance_group_share']:.2f} | "
            f"{r['logged_groups']['zero_reward_variance']:.2f} / "
            f"{r['logged_groups']['zero_advantage']:.2f} "
            f"(of {r['logged_groups']['logged_groups']}) | "
            f"{r['train_wall_s']:.0f} ({r['train_cpu_s']:.0f}) |"
        )
    lines.append(
        f"\nBase scored once ({base['uptime']}). Runs trained with OMP_NUM_THREADS="
        + ", ".join(sorted({r["train_omp_num_threads"] for r in per_run.values()}))
        + " on a 2-core machine shared with other jobs (load averages in the JSON); "
        "wall time counts the wait for a core, CPU time does not."
    )
    for reward, label, table in (
        ("verpo", "VeRPO", comparison),
        ("rm", "rm.score (a learned reward model)", rm_comparison),
    ):
        for seed, c in table.items():
            lo, hi = c["ci95"]
            lines.append(
                f"\n{label} minus binary, {seed}: pass@1 "
                f"{c[f'pass_at_1_{reward}_minus_binary']:+.3f} [{lo:+.3f}, {hi:+.3f}], "
                f"per-test pass rate {c[f'test_pass_rate_{reward}_minus_binary']:+.3f} "
                f"[{c['test_pass_rate_ci95'][0]:+.3f}, {c['test_pass_rate_ci95'][1]:+.3f}]"
            )
    (RESULTS / "code_functions_smollm2.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
