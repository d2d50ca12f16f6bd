"""The pure pieces of bench/recsys_paired.py, recsys_beta_sweep.py and recsys_hit_share.py:
paired intervals on hand-made differences, the pooling over seeds, the commands each seed
runs, and the expected share of groups with a hit."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    sys.path.insert(0, str(BENCH))  # the sweep imports recsys_paired as a sibling
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


paired = load("recsys_paired")


def test_intervals_of_a_constant_difference_are_that_difference():
    diff = np.full(50, 0.01)
    assert paired.bootstrap_ci(diff, n=200) == pytest.approx((0.01, 0.01))
    assert paired.two_level_ci(np.full((3, 50), 0.01), n=200) == pytest.approx((0.01, 0.01))


def test_users_bootstrap_covers_the_mean_and_narrows_with_more_users():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.0, 0.1, 100), rng.normal(0.0, 0.1, 2500)
    lo_s, hi_s = paired.bootstrap_ci(small, n=2000)
    lo_l, hi_l = paired.bootstrap_ci(large, n=2000)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    # the width shrinks like 1/sqrt(users): 5x fewer than 100 → about 1/5
    assert (hi_l - lo_l) / (hi_s - lo_s) == pytest.approx(0.2, rel=0.25)


def test_pooling_averages_each_users_difference_over_seeds():
    before = np.array([0.0, 1.0, 0.5, 0.0])
    afters = [np.array([1.0, 1.0, 0.5, 0.0]), np.array([0.0, 0.5, 0.5, 0.0])]
    # seed differences: [1, 0, 0, 0] (mean .25) and [0, -.5, 0, 0] (mean -.125)
    out = paired.pooled([before, before], afters, n=500)
    assert out["seed_mean_differences"] == pytest.approx([0.25, -0.125])
    assert out["mean_difference"] == pytest.approx(0.0625)
    assert out["seed_sd"] == pytest.approx(np.std([0.25, -0.125], ddof=1))
    assert out["ndcg@10_before"] == pytest.approx(0.375)
    assert out["ndcg@10_after"] == pytest.approx((0.625 + 0.25) / 2)
    lo, hi = out["bootstrap_95_seeds_and_users"]
    assert lo <= 0.0625 <= hi
    one = paired.summarise(before, afters[0], n=500)
    assert (one["users_better"], one["users_worse"], one["mean_difference"]) == (1, 0, 0.25)


def test_every_seed_but_0_loads_the_seed_0_aligned_policy():
    cmd = paired.train_command("c.yaml", 2, Path("out/seed2"), "test", ["beta=0.01"])
    sets = [cmd[i + 1] for i, x in enumerate(cmd) if x == "--set"]
    assert sets == [
        "seed=2",
        "output_dir=out/seed2",
        "task_options.eval_split=test",
        "task_options.alignment_seed=0",
        "beta=0.01",
    ]
    assert "task_options.alignment_seed=0" not in paired.train_command(
        "c", 0, Path("o"), "test", []
    )


def test_a_finished_run_is_read_not_rerun(tmp_path, monkeypatch):
    results = {"after_srpo": {}, "per_user": {"after_srpo": {paired.METRIC: [0.5]}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(paired.subprocess, "run", lambda *a, **k: pytest.fail("reran"))
    assert paired.run_seed("c", 1, tmp_path, "test", []) == results
    (tmp_path / "results.json").write_text(json.dumps({"after_srpo": {}}))
    with pytest.raises(RuntimeError, match="no per-user"):
        paired.run_seed("c", 1, tmp_path, "test", [])


def test_beta_sweep_reads_the_training_shares(tmp_path):
    sweep = load("recsys_beta_sweep")
    rows = [{"step": 0, "task/direct/ndcg@10": 0.05}] + [
        {
            "step": i,
            "time/step": 1.0,
            "kl": float(i),
            "group_filter/dropped_fraction": 0.5,
            "reward/recsys.id_match/groups_with_hit": i / 20,
            "reward/recsys.id_match/mean": 0.1,
        }
        for i in range(1, 21)
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = sweep.training_means(path)
    assert out["kl_last_10"] == pytest.approx(np.mean(range(11, 21)))
    assert out["reward/recsys.id_match/groups_with_hit"] == pytest.approx(
        np.mean(range(1, 21)) / 20
    )
    assert out["group_filter/dropped_fraction"] == 0.5


def test_expected_hit_share():
    hits = load("recsys_hit_share")
    p = np.array([0.0, 0.5, 1.0])
    # G = 1: mean(0, .5, 1) = .5; G = 2: mean(0, .75, 1) = 0.583333
    out = hits.expected_hit_share(p, [1, 2])
    assert out == pytest.approx({"1": 0.5, "2": 0.583333}, abs=1e-6)
    # the config's note: p = 0.006 for every prompt → 9.2% of groups at G = 16, 32% at 64
    const = hits.expected_hit_share(np.full(10, 0.006), [16, 64])
    assert const["16"] == pytest.approx(0.0918, abs=1e-3) and const["64"] == pytest.approx(
        0.319, abs=1e-3
    )
