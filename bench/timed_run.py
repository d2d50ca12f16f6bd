"""`rewardkit train` in a subprocess, with what it cost: wall time, CPU seconds (user + system,
what the run costs whatever else shares the cores), the load average before and after, and
OMP_NUM_THREADS. Shared by the real-model benches (imported as a sibling module)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


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
