"""`rewardkit train` in a subprocess, with what it cost: wall time, CPU seconds (user + system,
what the run costs whatever else shares the cores), the load average before and after, and
OMP_NUM_THREADS; and what the real-model benches report about a run: its logged metrics and
the paired bootstrap interval of a gain. Shared by those benches (imported as a sibling
module)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_train(config: str, overrides: list[str], run_dir: Path, cwd: Path) -> dict:
    """Train `config` with `--set` overrides into `run_dir`; the record is also written to
    run_dir/wall.json."""
    cmd = [sys.executable, "-m", "rewardkit.cli", "train", "--config", config]
    for override in (f"output_dir={run_dir}", "progress=false", *overrides):
        cmd += ["--set", override]
    record = {
        "command": " ".join(cmd[1:]),
        "uptime_before": uptime(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }
    start, cpu = time.perf_counter(), _children_cpu_s()
    subprocess.run(cmd, check=True, cwd=cwd)
    record.update(
        wall_s=time.perf_counter() - start, cpu_s=_children_cpu_s() - cpu, uptime_after=uptime()
    )
    (run_dir / "wall.json").write_text(json.dumps(record, indent=1))
    return record


def history(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl."""
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def paired_bootstrap(before, after, resamples: int = 10_000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of mean(after) - mean(before), the held-out items resampled
    with replacement and kept paired (the same items on both sides)."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    idx = np.random.default_rng(seed).integers(0, len(before), size=(resamples, len(before)))
    diffs = after[idx].mean(1) - before[idx].mean(1)
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
