"""Tasks agents.gridworld / agents.frozenlake and the replaying success reward."""

from __future__ import annotations

import copy

import pytest

from rewardkit import REWARDS, TASKS
from rewardkit.envs import TextEnvironment
from rewardkit.rewards.base import build_reward
from rewardkit.tasks.base import Task
from rewardkit.types import Sample, Turn
from rewardkit_agents.rewards import EpisodeSuccess
from rewardkit_agents.tasks import TEST_SEED_OFFSET, FrozenLakeTask, GridWorldTask


def rollout(task, row, actions, record_state=True) -> Sample:
    """What the trainer will do: reset, step each action, record turns (state before)."""
    env = task.make_environment(row)
    env.reset(row)
    turns, position = [], 0
    for action in actions:
        state = env.state()
        result = env.step(action)
        turns.append(
            Turn(
                start=position,
                end=position + 1,
                action=action,
                observation=result.observation,
                state=state if record_state else None,
                reward=result.reward,
            )
        )
        position += 2
        if result.done:
            break
    return Sample(prompt=task.prompt(row), completion="", meta=row, turns=turns)


def test_registered_by_entry_point():
    assert TASKS.get("agents.gridworld") is GridWorldTask
    assert TASKS.get("agents.frozenlake") is FrozenLakeTask
    assert REWARDS.get("agents.success") is EpisodeSuccess
    assert issubclass(GridWorldTask, Task) and issubclass(FrozenLakeTask, Task)


@pytest.mark.parametrize("cls", [GridWorldTask, FrozenLakeTask])
def test_rows_prompt_environment_and_defaults(cls):
    task = cls(num_train=5, num_test=3, max_turns=9, max_episode_tokens=300)
    train, test = task.rows("train"), task.rows("test")
    assert [r["seed"] for r in train] == [0, 1, 2, 3, 4]
    assert [r["seed"] for r in test] == [TEST_SEED_OFFSET + k for k in range(3)]
    assert all(r["env"] == task.env_name for r in train + test)
    assert train[0]["env_options"]["max_turns"] == 9
    assert task.multi_turn and (task.max_turns, task.max_episode_tokens) == (9, 300)
    assert [s.name for s in task.rewards] == ["agents.success"]
    prompt = task.prompt(train[0])
    assert "<action>" in prompt and isinstance(prompt, str)
    env = task.make_environment(train[0])
    assert isinstance(env, TextEnvironment)
    assert env.max_turns == 9 and env.max_episode_tokens == 300
    worlds = {task.make_environment(r).reset(r) for r in train}
    assert len(worlds) > 1  # rows are different seeds, hence different layouts


def test_task_options_reach_the_rows():
    task = GridWorldTask(num_train=1, size=4, wall_density=0.0, key=False)
    row = task.rows("train")[0]
    assert (row["size"], row["wall_density"], row["key"]) == (4, 0.0, False)
    assert len(task.make_environment(row).reset(row).splitlines()) == 4


def test_bad_task_options():
    with pytest.raises(TypeError, match="unknown options \\['colour'\\]"):
        GridWorldTask(colour="red")
    with pytest.raises(ValueError, match="num_train"):
        GridWorldTask(num_train=-1)
    with pytest.raises(ValueError, match="max_turns"):
        FrozenLakeTask(max_turns=0)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        GridWorldTask().rows("dev")
    with pytest.raises(ValueError, match="row is for environment 'gridworld'"):
        FrozenLakeTask().make_environment(GridWorldTask(num_train=1).rows("train")[0])


def test_success_reward_replays_the_episode(bfs_plan):
    task = GridWorldTask(num_train=3)
    reward = build_reward(REWARDS.get("agents.success"))
    row = task.rows("train")[2]
    env = task.make_environment(row)
    env.reset(row)
    plan = bfs_plan(env)
    good = rollout(task, row, plan)
    short = rollout(task, row, plan[:-1])  # one step before the door
    messy = rollout(task, row, ["fly"] + plan, record_state=False)
    outputs = reward([good, short, messy])
    assert [o.score for o in outputs] == [1.0, 0.0, 1.0]
    assert outputs[0].info == {
        "success": True,
        "invalid_actions": 0,
        "turns": len(plan),
        "source": "replay",
    }
    assert outputs[2].info["invalid_actions"] == 1
    penalised = EpisodeSuccess(invalid_action_penalty=0.25)([messy])[0]
    assert penalised.score == 0.75  # 1 - 0.25 * 1 invalid action
    empty = Sample(prompt="", completion="", meta=row, turns=None)
    assert reward([empty])[0].score == 0.0


def test_success_reward_on_frozenlake_hole():
    task = FrozenLakeTask(num_train=1)
    row = {**task.rows("train")[0], "map": ["SF", "HG"]}
    assert EpisodeSuccess()([rollout(task, row, ["down"])])[0].score == 0.0
    assert EpisodeSuccess()([rollout(task, row, ["right", "down"])])[0].score == 1.0


def test_success_reward_detects_divergence_and_extra_turns(bfs_plan):
    task = GridWorldTask(num_train=1)
    row = task.rows("train")[0]
    env = task.make_environment(row)
    env.reset(row)
    plan = bfs_plan(env)
    forged = rollout(task, row, plan)
    forged.turns[1].state = (99, 99, False)
    with pytest.raises(ValueError, match="sample 0 turn 1: the replay is in state"):
        EpisodeSuccess()([forged])
    extra = rollout(task, row, plan)
    extra.turns.append(copy.deepcopy(extra.turns[-1]))
    with pytest.raises(ValueError, match="episode ended after turn"):
        EpisodeSuccess()([extra])
    with pytest.raises(ValueError, match="invalid_action_penalty"):
        EpisodeSuccess(invalid_action_penalty=-1)


def test_success_reward_uses_the_outcome_the_rollout_recorded():
    # The rollout loop stores meta["episode"]; it wins over a replay (which here would say
    # failure: the single recorded action does not reach the goal).
    task = FrozenLakeTask(num_train=1)
    row = {**task.rows("train")[0], "map": ["SF", "HG"]}
    sample = rollout(task, row, ["right"])
    assert EpisodeSuccess()([sample])[0].score == 0.0
    sample.meta = {**row, "episode": {"success": True, "invalid_actions": 2, "turns": 1}}
    out = EpisodeSuccess(invalid_action_penalty=0.1)([sample])[0]
    assert out.score == pytest.approx(1.0 - 0.1 * 2)
    assert out.info["source"] == "rollout" and out.info["invalid_actions"] == 2
