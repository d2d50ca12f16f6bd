"""The flagship run: GRPO lifts SmolLM2-135M-Instruct on two-digit addition, on the CPU.

For each seed: `rewardkit train --config configs/core/smollm2_add.yaml` in a subprocess
(wall time and `uptime` recorded), then a paired evaluation of the base model and the run's
`final/` on the same held-out items with the trainer's own greedy evaluation (rollout with
greedy decoding, the task's accuracy reward): per-item correctness before and after, the
gain with a paired bootstrap 95% CI over items, and McNemar's discordant counts. Writes
bench/results/smollm2_add.json and .png (held-out accuracy and train reward per step).

    uv run --no-sync python bench/smollm2_flagship.py                  # seed 0
    uv run --no-sync python bench/smollm2_flagship.py --seeds 0 1 2
    uv run --no-sync python bench/smollm2_flagship.py --reuse          # evaluate finished runs
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


def train(config: str, seed: int, run_dir: Path) -> dict:
    return timed_train(config, [f"seed={seed}"], run_dir, ROOT)


def per_item(config_path: str, model: str, seed: int) -> tuple[list[bool], list[str]]:
    """Correctness of each held-out row under the trainer's greedy evaluation."""
    from rewardkit.trainer.config import GRPOConfig
    from rewardkit.trainer.trainer import GRPOTrainer

    config = GRPOConfig.load(
        config_path,
        [
            f"model={model}",
            "lora_r=0",
            "max_steps=0",
            "report_to=[]",
            "progress=false",
            f"seed={seed}",
            f"output_dir={tempfile.mkdtemp()}",
        ],
    )
    trainer = GRPOTrainer(config)
    rows = trainer.task.rows("test")[: config.eval_size]
    samples = trainer.rollout(rows, greedy=True, generations=1)
    scores = trainer.scorer(samples).raw[trainer.parts.accuracy_reward]
    return [s >= config.eval_correct_threshold for s in scores], [s.completion for s in samples]


def plot(runs: dict[int, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for seed, run_dir in runs.items():
        h = history(run_dir)
        ev = [(r["step"], r["eval/accuracy"]) for r in h if "eval/accuracy" in r]
        a.plot(*zip(*ev), "o-", label=f"seed {seed}")
        tr = [
            (r["step"], r["reward/core.last_number/mean"])
            for r in h
            if "reward/core.last_number/mean" in r
        ]
        b.plot(*zip(*tr), alpha=0.8, label=f"seed {seed}")
    a.set(
        xlabel="GRPO step",
        ylabel="held-out greedy accuracy",
        title="SmolLM2-135M-Instruct, two-digit sums",
    )
    b.set(
        xlabel="GRPO step",
        ylabel="train reward (mean of 32 samples, T 0.7)",
        title="sampled reward",
    )
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/core/smollm2_add.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--runs", default="runs/smollm2_add", help="parent folder of seed<k>/")
    p.add_argument("--reuse", action="store_true", help="evaluate runs that have final/")
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--name", default="smollm2_add")
    args = p.parse_args()
    runs = {s: ROOT / args.runs / f"seed{s}" for s in args.seeds}
    per_seed = {}
    for seed, run_dir in runs.items():
        if not (args.reuse and (run_dir / "final" / "config.json").exists()):
            train(args.config, seed, run_dir)
        wall = json.loads((run_dir / "wall.json").read_text())
        t = time.perf_counter()
        base, base_text = per_item(args.config, "smollm2-135m-instruct", seed)
        tuned, tuned_text = per_item(args.config, str(run_dir / "final"), seed)
        before, after = np.array(base, float), np.array(tuned, float)
        low, high = paired_bootstrap(before, after, args.resamples, seed)
        h = history(run_dir)
        evals = [(r["step"], r["eval/accuracy"]) for r in h if "eval/accuracy" in r]
        per_seed[seed] = {
            "items": len(base),
            "accuracy_before": before.mean(),
            "accuracy_after": after.mean(),
            "gain": after.mean() - before.mean(),
            "gain_ci95_paired_bootstrap": [low, high],
            "only_before_correct": int(((before == 1) & (after == 0)).sum()),
            "only_after_correct": int(((before == 0) & (after == 1)).sum()),
            "trainer_eval_curve": evals,
            "train_wall_s": wall["wall_s"],
            "train_uptime_before": wall["uptime_before"],
            "train_uptime_after": wall["uptime_after"],
            "omp_num_threads": wall["omp_num_threads"],
            "median_step_s": float(np.median([r["time/step"] for r in h if "time/step" in r])),
            "paired_eval_s": time.perf_counter() - t,
            "examples": [{"before": b, "after": a} for b, a in zip(base_text[:6], tuned_text[:6])],
        }
        print(json.dumps({k: v for k, v in per_seed[seed].items() if k != "examples"}), flush=True)
    gains = [r["gain"] for r in per_seed.values()]
    result = {
        "command": "uv run --no-sync python bench/smollm2_flagship.py " + " ".join(sys.argv[1:]),
        "config": args.config,
        "config_text": (ROOT / args.config).read_text(),
        "per_seed": per_seed,
        "mean_gain": float(np.mean(gains)),
        "min_gain": float(np.min(gains)),
        "eval_uptime_after": uptime(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=float))
    plot(runs, RESULTS / f"{args.name}.png")
    print(json.dumps({k: result[k] for k in ("mean_gain", "min_gain")}))


if __name__ == "__main__":
    main()
