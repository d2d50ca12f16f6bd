"""The agents configs resolve, and each runs multi-turn GRPO end to end on the CPU
(tiny model, 2 steps) through `rewardkit train`, with the advantage it names.

The estimator is spied on (its class's `__call__` is wrapped) so the test sees that the
configured estimator, and not another one, produced the advantages of every step, on
multi-turn batches (turns recorded, observation tokens masked out).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardkit.cli import main
from rewardkit.registry import ADVANTAGES
from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import GRPOConfig
from rewardkit_agents import SALT, FrozenLakeTask, GiGPO, GridWorldTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "agents"

# config file -> (task class, advantage name, estimator class or None for core's grpo)
EXPECTED = {
    "gridworld_salt.yaml": (GridWorldTask, "agents.salt", SALT),
    "frozenlake_gigpo.yaml": (FrozenLakeTask, "agents.gigpo", GiGPO),
    "gridworld_grpo.yaml": (GridWorldTask, "grpo", None),
}


def test_every_config_file_is_covered():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_resolves_to_its_task_and_estimator(name):
    task_cls, advantage, estimator_cls = EXPECTED[name]
    config = GRPOConfig.load(CONFIGS / name)
    parts = resolve(config)
    assert isinstance(parts.task, task_cls)
    assert config.advantage == advantage
    assert isinstance(parts.estimator, estimator_cls or ADVANTAGES.get("grpo"))
    assert parts.accuracy_reward == "agents.success"
    # multi-turn: the trainer's limits are the task's (one setting each), the environment's
    assert parts.task.multi_turn
    assert parts.task.max_turns == parts.task.env_options["max_turns"] > 1
    assert parts.task.max_episode_tokens == parts.task.env_options["max_episode_tokens"]


def test_a_misspelt_advantage_option_is_a_config_error(tmp_path, capsys):
    args = ["train", "--config", str(CONFIGS / "gridworld_salt.yaml")]
    code = main(args + ["--set", "advantage_options.kee=state", "--set", f"output_dir={tmp_path}"])
    assert code == 2
    assert "kee" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_trains_two_steps_with_its_advantage(name, tmp_path, monkeypatch):
    _, advantage, _ = EXPECTED[name]
    estimator_cls = ADVANTAGES.get(advantage)
    calls = []
    original = estimator_cls.__call__

    def spy(self, batch):
        adv = original(self, batch)
        calls.append((batch, adv))
        return adv

    monkeypatch.setattr(estimator_cls, "__call__", spy)
    out = tmp_path / "run"
    settings = [
        "max_steps=2",
        f"output_dir={out}",
        "progress=false",
        "prompts_per_step=2",
        "num_generations=2",
        "eval_size=2",
        "max_completion_length=8",
        "log_completions_every=1",
    ]
    code = main(
        ["train", "--config", str(CONFIGS / name)] + [x for s in settings for x in ("--set", s)]
    )
    assert code == 0

    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/total/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert 0.0 <= r["reward/agents.success/mean"] <= 1.0
        assert r["loss"] == r["loss"]  # not NaN
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2]
    written = json.loads((out / "config.json").read_text())
    assert written["advantage"] == advantage
    assert written["task_options.max_turns"] > 1  # the task's setting, in one place

    # the configured estimator made every step's advantages, on multi-turn batches:
    # 2 prompts x 2 generations, each with recorded turns and masked observations
    assert len(calls) == 2
    for batch, adv in calls:
        assert adv.shape == batch.completion_mask.shape == (4, adv.shape[1])
        assert batch.turns is not None and all(len(t) >= 1 for t in batch.turns)
        assert (batch.completion_mask == 0).any()  # observation tokens are not trained
    completions = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    assert {c["step"] for c in completions} == {1, 2}
