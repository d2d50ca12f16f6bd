"""The translation configs: both resolve, and the exemplar one runs GRPO end to end on
the CPU (tiny model, metric judge, shipped parallel data) in its smoke form."""

import json
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit_translation.judges.metric import MetricJudge
from rewardkit_translation.rewards import ChrF, ExemplarReward, MultilingualReward

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "translation"


def test_configs_resolve():
    parts = resolve(GRPOConfig.load(CONFIGS / "grpo_tiny_exemplar.yaml"))
    exemplar, chrf = (r.reward for r in parts.rewards)
    assert isinstance(exemplar, ExemplarReward) and isinstance(exemplar.judge, MetricJudge)
    assert isinstance(chrf, ChrF) and chrf.gate is False
    assert parts.accuracy_reward == "translation.exemplar"
    assert all(r["exemplar"] for r in parts.task.rows("train"))
    parts = resolve(GRPOConfig.load(CONFIGS / "grpo_tiny_multilingual.yaml"))
    assert isinstance(parts.rewards[0].reward, MultilingualReward)
    assert len(parts.task.rows("train")) == 144 - 8


@pytest.mark.slow
def test_exemplar_config_runs_grpo_end_to_end(tmp_path):
    out = tmp_path / "run"
    settings = [
        "max_steps=2",
        f"output_dir={out}",
        "progress=false",
        "eval_size=2",
        "max_completion_length=24",
    ]
    args = ["train", "--config", str(CONFIGS / "grpo_tiny_exemplar.yaml")]
    code = main(args + [x for s in settings for x in ("--set", s)])
    assert code == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/total/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert 0.0 <= r["reward/translation.exemplar/mean"] <= 1.0
        assert 0.0 <= r["reward/translation.chrf/mean"] <= 1.0
        assert r["loss"] == r["loss"]  # not NaN
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 2]  # before and after training
    assert (out / "checkpoint-2" / "trainer_state.json").exists()
    assert (out / "final" / "config.json").exists()
