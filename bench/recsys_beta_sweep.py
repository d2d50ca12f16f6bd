"""Sweep SRPO's KL weight β on the validation items (GREAM, arXiv 2510.20815, §3.3; the spec
says β = 0.001). Each β is one `rewardkit train` run from the same aligned policy
(`task_options.alignment_seed=0`: align once with seed 0, or have it cached), evaluated on
each user's second-to-last item (`task_options.eval_split=valid`, direct mode only); the
report gives, per β, validation NDCG@10 after SRPO, the paired difference to the aligned
policy with its bootstrap interval over users, and from metrics.jsonl the mean share of
groups with an exact hit, the share dynamic sampling dropped, and the KL of the last 10
steps.

    OMP_NUM_THREADS=1 uv run --no-sync python bench/recsys_beta_sweep.py \\
        --betas 0.001 0.004 0.01 0.04 --out runs/recsys/beta

A finished run is not rerun. Extra `--set key=value` go to every run. Writes
bench/results/recsys_beta_sweep.json (or `--results`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from recsys_paired import METRIC, run_seed, summarise


def training_means(metrics_jsonl: Path) -> dict[str, float]:
    """Means over the SRPO steps of the shares that say whether the bonus and the filter
    matter, and the KL of the last 10 steps."""
    rows = [json.loads(x) for x in metrics_jsonl.read_text().splitlines() if x.strip()]
    steps = [r for r in rows if "time/step" in r]
    out: dict[str, float] = {}
    for key in (
        "reward/recsys.id_match/groups_with_hit",
        "group_filter/dropped_fraction",
        "reward/recsys.id_match/mean",
    ):
        values = [r[key] for r in steps if key in r]
        if values:
            out[key] = float(np.mean(values))
    kl = [r["kl"] for r in steps[-10:] if "kl" in r]
    if kl:
        out["kl_last_10"] = float(np.mean(kl))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/recsys/ml100k.yaml")
    p.add_argument("--betas", type=float, nargs="+", default=[0.001, 0.004, 0.01, 0.04])
    p.add_argument("--seed", type=int, default=0, help="SRPO seed of every run")
    p.add_argument("--out", default="runs/recsys/beta")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--bootstrap", type=int, default=10_000)
    p.add_argument("--results", default="bench/results/recsys_beta_sweep.json")
    args = p.parse_args()
    sets = ["task_options.reasoning_eval_users=0", "task_options.alignment_seed=0"]
    sets += args.set or []
    report = {"config": args.config, "seed": args.seed, "set": sets, "betas": {}}
    for beta in args.betas:
        out = Path(args.out) / f"beta{beta:g}"
        results = run_seed(args.config, args.seed, out, "valid", [*sets, f"beta={beta}"])
        before = np.array(results["per_user"]["after_alignment"][METRIC])
        after = np.array(results["per_user"]["after_srpo"][METRIC])
        report["betas"][f"{beta:g}"] = summarise(before, after, args.bootstrap) | training_means(
            out / "metrics.jsonl"
        )
    report["command"] = " ".join(
        ["uv run --no-sync python bench/recsys_beta_sweep.py", *sys.argv[1:]]
    )
    print(json.dumps(report, indent=1))
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
