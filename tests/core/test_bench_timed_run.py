"""The shared statistics of the real-model benches (bench/timed_run.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
spec = importlib.util.spec_from_file_location("timed_run", BENCH / "timed_run.py")
timed_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(timed_run)


def test_paired_bootstrap_of_a_constant_gain_is_that_gain():
    before = np.array([0, 1, 0, 1, 1, 0], float)
    assert timed_run.paired_bootstrap(before, before + 0.25, 500) == pytest.approx([0.25, 0.25])


def test_paired_bootstrap_by_hand():
    # two items; every resample is (0,0), (0,1), (1,0) or (1,1): gains 0, 0.5, 0.5, 1
    before, after = [0.0, 0.0], [0.0, 1.0]
    low, high = timed_run.paired_bootstrap(before, after, 4000, seed=3)
    assert (low, high) == (0.0, 1.0)
    # pairing: one item flips from 1 to 0 and another from 0 to 1, the rest unchanged;
    # a resample's gain is (copies of the second item - copies of the first) / n, each count
    # about Poisson(1): the interval straddles 0, a few items wide
    n = 40
    b = np.zeros(n)
    a = np.zeros(n)
    b[0], a[1] = 1, 1
    low, high = timed_run.paired_bootstrap(b, a, 2000)
    assert low < 0 < high and max(-low, high) <= 4 / n


def test_history_reads_metrics_rows(tmp_path):
    rows = [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert timed_run.history(tmp_path) == rows
