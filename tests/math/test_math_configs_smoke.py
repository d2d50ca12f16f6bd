"""The math configs: both resolve to the intended parts, and each runs GRPO end to end on
the CPU for 2 steps (tiny model, shipped GSM8K-style data)."""

import json
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit_math.accuracy import MathAccuracy
from rewardkit_math.implicit_reward import ImplicitPRMReward
from rewardkit_math.prime import PRIMEAdvantage

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "math"


def test_configs_resolve():
    parts = resolve(GRPOConfig.load(CONFIGS / "grpo_accuracy_tiny.yaml"))
    assert [r.name for r in parts.rewards] == ["math.accuracy"]
    assert isinstance(parts.rewards[0].reward, MathAccuracy)
    assert len(parts.task.rows("train")) == 36 and len(parts.task.rows("test")) == 12
    parts = resolve(GRPOConfig.load(CONFIGS / "prime_tiny.yaml"))
    accuracy, prm = (r.reward for r in parts.rewards)
    assert isinstance(accuracy, MathAccuracy) and parts.accuracy_reward == "math.accuracy"
    assert isinstance(prm, ImplicitPRMReward)
    assert prm.online_update == "before" and prm.score == "zero"
    assert isinstance(prm.labeler, MathAccuracy)
    assert isinstance(parts.estimator, PRIMEAdvantage)


def _run(config: str, out: Path) -> list[dict]:
    settings = [
        "max_steps=2",
        f"output_dir={out}",
        "progress=false",
        "eval_size=2",
        "report_to=[jsonl]",
        "max_completion_length=16",
    ]
    args = ["train", "--config", str(CONFIGS / config)]
    assert main(args + [x for s in settings for x in ("--set", s)]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/total/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert 0.0 <= r["reward/math.accuracy/mean"] <= 1.0
        assert r["loss"] == r["loss"]  # not NaN
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]
    return steps


@pytest.mark.slow
def test_grpo_accuracy_config_runs(tmp_path):
    steps = _run("grpo_accuracy_tiny.yaml", tmp_path / "run")
    assert not any(k.startswith("reward/math.implicit_prm") for k in steps[0])


@pytest.mark.slow
def test_prime_config_runs_with_online_prm_updates(tmp_path):
    steps = _run("prime_tiny.yaml", tmp_path / "run")
    for n, r in enumerate(steps, start=1):
        # one update per training step (the learned-reward hook); evaluation never trains it
        assert r["reward/math.implicit_prm/prm_updates"] == n
        assert r["reward/math.implicit_prm/prm_skipped_updates"] == 0
        assert r["reward/math.implicit_prm/prm_loss"] > 0
        assert r["reward/math.implicit_prm/mean"] == 0.0  # score "zero": outcome = verifier
        assert r["reward/total/mean"] == r["reward/math.accuracy/mean"]
    # PRIME starts with pi_theta = pi_ref (same tiny model): the first CE loss is log 2
    assert steps[0]["reward/math.implicit_prm/prm_loss"] == pytest.approx(0.693147, abs=1e-5)
    # the second step's loss is the updated PRM's, on new rollouts
    assert (
        steps[1]["reward/math.implicit_prm/prm_loss"]
        != steps[0]["reward/math.implicit_prm/prm_loss"]
    )
