"""The configs under configs/code/: the real-model config loads and resolves without a
model or a sandbox; the tiny config trains end to end through `rewardkit.cli.main` with
the Docker sandbox, single-turn (2 steps) and multi-turn (HumanEval max_turns=2, 1 step).

The end-to-end tests are `slow` and `docker`: without an engine they skip, and with
REWARDKIT_REQUIRE_DOCKER=1 they fail (the `docker_image` fixture of conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rewardkit.trainer.components import resolve
from rewardkit.trainer.config import ConfigError, GRPOConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "code" / "humaneval_tiny.yaml"
REAL = ROOT / "configs" / "code" / "humaneval_real.yaml"
SANDBOX_KEYS = ("backend", "image", "pool_size", "timeout", "memory_mb", "require_code_block")


def _sandbox_options(options: dict) -> dict:
    return {k: options.get(k) for k in SANDBOX_KEYS}


# -- the configs as configs (no model, no Docker) ---------------------------------------


@pytest.mark.parametrize("path", [TINY, REAL], ids=["tiny", "real"])
def test_config_environment_and_rewards_share_one_sandbox(path):
    """The multi-turn environment (task_options.executor) and every code reward name the
    same sandbox settings, so they share one container pool and its result cache."""
    config = GRPOConfig.load(path)
    env_options = _sandbox_options(config.task_options["executor"])
    assert env_options["backend"] == "docker"
    for spec in config.rewards:
        assert _sandbox_options(spec.options) == env_options, spec.name


def test_real_config_loads_and_resolves_without_a_model():
    config = GRPOConfig.load(REAL)
    assert config.model == "/path/to/Qwen2.5-0.5B-Instruct"  # a documented placeholder
    assert (config.dtype, config.lora_r, config.lora_alpha) == ("bfloat16", 16, 32)
    assert config.gradient_checkpointing
    assert config.max_completion_length == 512 and config.max_prompt_length == 1024
    assert (config.task, config.advantage) == ("code.humaneval", "code.verpo")
    assert config.task_options["max_turns"] == 1 and config.reward_timeout == 300.0
    parts = resolve(config)  # builds task, rewards and estimator; loads no model
    assert [r.name for r in parts.rewards] == ["code.verpo", "code.pass_rate"]
    assert [r.weight for r in parts.rewards] == [1.0, 0.0]
    assert parts.accuracy_reward == "code.verpo"
    verpo = parts.rewards[0].reward
    assert (verpo.alpha, verpo.sigma, verpo.delta, verpo.beta) == (2.0, 0.1, 0.001, 1.0)
    executor = verpo.executor
    assert executor.backend == "docker" and executor.timeout == 5.0
    assert executor.require_code_block is True
    assert executor.settings == {"pool_size": 8, "memory_mb": 512}  # image: the default
    assert executor._sandbox is None  # building the rewards started no container
    assert len(parts.task.rows("train")) == 164
    assert not parts.task.multi_turn  # single-turn by default


def test_real_config_multi_turn_override_names_the_environment():
    config = GRPOConfig.load(REAL, ["task_options.max_turns=3"])  # one place for the limit
    task = resolve(config).task
    assert task.multi_turn and task.max_turns == 3 and task.max_episode_tokens == 2048
    env = task.make_environment(task.rows("train")[0])
    assert env.max_turns == 3
    assert env.executor.backend == "docker" and env.executor.settings["pool_size"] == 8


def test_tiny_config_bad_overrides_fail_with_the_key():
    with pytest.raises(ConfigError, match="unknown config key 'max_step'.*max_steps"):
        GRPOConfig.load(TINY, ["max_step=2"])
    with pytest.raises(ConfigError, match="was replaced.*task_options.max_turns"):
        GRPOConfig.load(TINY, ["max_turns=2"])
    with pytest.raises(ValueError, match="max_turns must be >= 1, got 0"):
        resolve(GRPOConfig.load(TINY, ["task_options.max_turns=0"]))
    with pytest.raises(ConfigError, match="task_options of 'code.humaneval'.*executr"):
        resolve(GRPOConfig.load(TINY, ["task_options.executr.timeout=1"]))


# -- end to end with the Docker sandbox ---------------------------------------------------


def _train(tmp_path: Path, image: str, *overrides: str) -> tuple[int, list[dict], list[dict]]:
    """`rewardkit train --config humaneval_tiny.yaml` with the test image and overrides;
    returns the exit code, metrics.jsonl rows and completions.jsonl rows."""
    from rewardkit.cli import main

    raw = yaml.safe_load(TINY.read_text())
    rewards = [{**r, "options": {**r["options"], "image": image}} for r in raw["rewards"]]
    out = tmp_path / "run"
    argv = [
        "train",
        "--config",
        str(TINY),
        "--set",
        f"output_dir={out}",
        "--set",
        "eval_size=2",
        "--set",
        "progress=false",
        "--set",
        f"task_options.executor.image={image}",
        "--set",
        f"rewards={json.dumps(rewards)}",
    ]  # JSON is YAML
    for item in overrides:
        argv += ["--set", item]
    rc = main(argv)
    read = lambda name: [json.loads(x) for x in (out / name).read_text().splitlines() if x]  # noqa: E731
    return rc, read("metrics.jsonl"), read("completions.jsonl")


def _step(metrics: list[dict], step: int) -> dict:
    rows = [m for m in metrics if m["step"] == step and "reward/total/mean" in m]
    assert len(rows) == 1, f"expected one training row for step {step}, got {rows}"
    return rows[0]


@pytest.mark.slow
@pytest.mark.docker
def test_tiny_config_trains_two_steps_in_the_docker_sandbox(tmp_path, docker_image):
    rc, metrics, completions = _train(tmp_path, docker_image, "max_steps=2")
    assert rc == 0
    s1, s2 = _step(metrics, 1), _step(metrics, 2)
    for m in (s1, s2):
        for key in (
            "reward/code.verpo/mean",
            "reward/code.verpo/std",
            "reward/total/mean",
            "advantage/mean",
            "loss",
            "completion_length",
        ):
            assert key in m, key
        assert m["reward/total/mean"] == m["reward/code.verpo/mean"]  # the only reward
    evals = [m["eval/accuracy"] for m in metrics if "eval/accuracy" in m]
    assert len(evals) == 2  # before and after training
    # the counters are cumulative over the run; step 2 alone sampled 2 prompts x 4
    # completions, each executed, answered from the cache, or without code (empty)
    delta = {
        k: s2[f"reward/code.verpo/{k}"] - s1[f"reward/code.verpo/{k}"]
        for k in ("programs_executed", "programs_cached", "no_code")
    }
    assert sum(delta.values()) == 2 * 4, delta
    assert delta["programs_executed"] >= 1  # random text: (almost) all new programs
    tests_run = sum(v for k, v in s2.items() if k.startswith("reward/code.verpo/tests_"))
    assert tests_run >= s2["reward/code.verpo/programs_executed"]  # >= 1 test per program
    assert s2["reward/code.verpo/tests_error"] > 0  # random text: SyntaxError and the like
    # sampled completions with their rewards, 8 per step (log_completions_every: 1)
    assert sorted({c["step"] for c in completions}) == [1, 2]
    assert [sum(c["step"] == k for c in completions) for k in (1, 2)] == [8, 8]
    assert all(set(c["rewards"]) == {"code.verpo"} for c in completions)


@pytest.mark.slow
@pytest.mark.docker
def test_tiny_config_multi_turn_step_masks_feedback(tmp_path, docker_image, monkeypatch):
    """HumanEval with max_turns=2: the task's make_environment makes the trainer run
    multi_turn_rollout; the sandbox's feedback after attempt 1 is in the completion with
    completion_mask 0, and the loss's token count excludes it."""
    import rewardkit.trainer.trainer as trainer_module

    rollouts: list[dict] = []
    real = trainer_module.multi_turn_rollout

    def spy(*args, **kwargs):
        samples = real(*args, **kwargs)
        rollouts.append({"greedy": kwargs.get("greedy", False), "samples": samples})
        return samples

    monkeypatch.setattr(trainer_module, "multi_turn_rollout", spy)
    rc, metrics, _ = _train(
        tmp_path,
        docker_image,
        "max_steps=1",
        "eval_size=1",
        "task_options.max_turns=2",
        "task_options.max_episode_tokens=1536",  # room for attempt + feedback + attempt
    )
    assert rc == 0
    train = [r["samples"] for r in rollouts if not r["greedy"]]
    assert len(train) == 1 and len(train[0]) == 2 * 4
    assert len([r for r in rollouts if r["greedy"]]) == 2  # eval before and after
    for s in train[0]:
        # a random model never solves a problem: two attempts, feedback after the first
        assert len(s.turns) == 2, s.completion
        first, second = s.turns
        mask = s.completion_mask
        assert 0 in mask and len(mask) == len(s.completion_ids)
        assert first.start == 0 and all(m == 1 for m in mask[first.start : first.end])
        assert all(m == 1 for m in mask[second.start : second.end])
        feedback = s.completion_ids[first.end : second.start]
        assert feedback and all(m == 0 for m in mask[first.end : second.start])
        assert mask[second.end :] == []  # the last attempt is not answered
        assert first.observation.startswith("Your code passed 0 of ")
        assert s.meta["episode"]["turns"] == 2
        if not first.action.strip():  # an immediate <eos>: nothing to run
            assert "no code block" in first.observation
        else:  # the masked tokens are the sandbox's answer: statuses of real executions
            assert "no code block" not in first.observation  # require_code_block: false
            assert ": error: " in first.observation or ": fail: " in first.observation
    assert sum(bool(s.turns[0].action.strip()) for s in train[0]) >= 4
    m = _step(metrics, 1)
    # completion_length counts policy tokens only (mask 1), so it is below the length
    # of the token sequences, which include the feedback
    policy = sum(sum(s.completion_mask) for s in train[0]) / len(train[0])
    total = sum(len(s.completion_ids) for s in train[0]) / len(train[0])
    assert m["completion_length"] == pytest.approx(policy)
    assert m["completion_length"] < total
    # the reward saw 2 eval attempts (before training) + 8 samples x 2 attempts; the
    # environment had already run them in the shared pool, so the reward found them in
    # the cache (a result the sandbox failed to produce is not cached and runs again)
    counts = {
        k: m[f"reward/code.verpo/{k}"] for k in ("programs_executed", "programs_cached", "no_code")
    }
    assert sum(counts.values()) == 2 + 8 * 2, counts
    assert counts["programs_cached"] >= 8 > counts["programs_executed"], counts


# -- the execution counters the smoke runs read ------------------------------------------


def test_executor_counters_by_hand(local_sandbox):
    """CodeExecutor.stats: 3 items, one program run once (its duplicate in the batch and a
    later call come from the cache), one completion without a code block."""
    from rewardkit_code.execution import CodeExecutor
    from rewardkit_code.rewards import PassRate

    row = {
        "tests": [
            {"type": "assert", "code": "assert add_one_cfg_smoke(1) == 2"},  # passes
            {"type": "assert", "code": "assert add_one_cfg_smoke(1) == 3"},  # fails
        ]
    }
    good = "```python\ndef add_one_cfg_smoke(x):\n    return x + 1\n```"
    executor = CodeExecutor(sandbox=local_sandbox, timeout=3.0)
    assert executor.stats() == {}
    executor.outcomes([(good, row), (good, row), ("no code here", row)])
    # executed 1; cached 3 - 1 - 1 = 1 (the duplicate); tests of the one run: 1 pass, 1 fail
    assert executor.stats() == {
        "programs_executed": 1.0,
        "programs_cached": 1.0,
        "no_code": 1.0,
        "tests_pass": 1.0,
        "tests_fail": 1.0,
        "tests_skipped": 0.0,  # always reported: the budget skipped nothing
    }
    executor.outcomes([(good, row)])  # a cache hit: nothing runs
    assert executor.stats()["programs_cached"] == 2.0
    assert executor.stats()["programs_executed"] == 1.0
    reward = PassRate(executor=executor)  # rewards report their executor's counters
    assert [o.score for o in reward([_sample(good, row)])] == [0.5]  # 1 of 2 tests
    assert reward.stats()["programs_cached"] == 3.0


def _sample(completion: str, row: dict):
    from rewardkit.types import Sample

    return Sample(prompt="p", completion=completion, meta=row)
