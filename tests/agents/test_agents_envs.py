"""Built-in text environments: determinism, rules, limits, invalid actions, rendering."""

from __future__ import annotations

from collections import deque

import pytest

from rewardkit.envs import TextEnvironment
from rewardkit_agents.envs import (
    ENVIRONMENTS,
    CliffWalkingEnv,
    FrozenLakeEnv,
    GridWorldEnv,
    TaxiEnv,
    make_environment,
)
from rewardkit_agents.envs.gridworld import make_layout


@pytest.mark.parametrize("cls", list(ENVIRONMENTS.values()))
def test_every_environment_follows_the_protocol(cls):
    env = cls()
    with pytest.raises(RuntimeError, match="reset\\(\\) before state"):
        env.state()
    assert isinstance(env, TextEnvironment)
    first = env.reset({"seed": 3})
    assert isinstance(first, str) and first
    hash(env.state())
    assert "<action>" in env.instructions()
    assert "\x1b[" not in first  # no ANSI colour codes


# -- grid world -------------------------------------------------------------------------
def test_gridworld_layout_is_deterministic_per_seed_and_varies_across_seeds():
    a, b = GridWorldEnv(), GridWorldEnv()
    assert a.reset({"seed": 7}) == b.reset({"seed": 7}, seed=123)  # layout from the row
    worlds = {GridWorldEnv().reset({"seed": s}) for s in range(8)}
    assert len(worlds) == 8


@pytest.mark.parametrize("seed", range(12))
def test_gridworld_every_layout_is_solvable(seed, bfs_plan):
    env = GridWorldEnv(max_turns=40)
    env.reset({"seed": seed})
    plan = bfs_plan(env)
    assert plan is not None
    env.reset({"seed": seed})
    for action in plan[:-1]:
        result = env.step(f"<action>{action}</action>")
        assert result.reward == 0.0 and not result.done
    result = env.step(plan[-1])
    assert result.done and result.reward == 1.0 and result.info["success"]
    assert env.state()[2] is True  # it carried the key through the door


def test_gridworld_rules_key_door_walls_edges():
    env = GridWorldEnv()
    env.reset({"seed": 0})
    # a hand-placed 5x5 world: A at (0,0), door right of it, key at (1,1), wall at (1,0)
    env.walls, env.agent, env.door, env.key, env.has_key = {(1, 0)}, (0, 0), (0, 1), (1, 1), False
    r = env.step("up")
    assert env.state() == (0, 0, False) and "edge" in r.observation
    r = env.step("down")
    assert env.state() == (0, 0, False) and "wall" in r.observation
    r = env.step("right")
    assert env.state() == (0, 0, False) and "locked" in r.observation and not r.done
    env.agent = (1, 2)
    r = env.step("left")
    assert env.state() == (1, 1, True) and "picked up the key" in r.observation
    assert "K" not in r.observation.split("You carry")[0].split("\n\n")[1]
    r = env.step("up")
    assert r.done and r.reward == 1.0 and r.info["success"] and env.state() == (0, 1, True)


def test_gridworld_without_key_the_door_is_open(bfs_plan):
    layout = make_layout(5, with_key=False)
    assert layout["key"] is None
    env = GridWorldEnv(max_turns=40)
    first = env.reset({"seed": 5, "key": False})
    assert "K" not in first and "key" not in first
    assert env.state()[2] is True
    assert bfs_plan(env) is not None


def test_turn_limit_and_step_after_end():
    env = GridWorldEnv(max_turns=2)
    env.reset({"seed": 1})
    assert not env.step("jump").done
    r = env.step("dance")
    assert r.done and r.info["truncated"] and "Turn limit (2)" in r.observation
    assert not r.info["success"]
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step("up")
    with pytest.raises(RuntimeError, match="before reset"):
        GridWorldEnv().step("up")


def test_invalid_actions_are_fed_back_counted_and_penalised():
    env = GridWorldEnv(invalid_action_penalty=0.5)
    first = env.reset({"seed": 2})
    state = env.state()
    r = env.step("I go upstairs")
    assert r.reward == -0.5 and r.info["invalid_action"] and r.info["invalid_actions"] == 1
    assert r.observation.startswith("Invalid action: unknown action 'i go upstairs'")
    assert first in r.observation and env.state() == state  # the world is shown again, unchanged
    r = env.step("<action>up</action>")
    assert r.reward == 0.0 and not r.info["invalid_action"] and r.info["invalid_actions"] == 1
    assert env.reset({"seed": 2}) and env.invalid_actions == 0 and env.turns == 0


def test_bad_rows_and_options():
    with pytest.raises(KeyError, match="no 'seed'"):
        GridWorldEnv().reset({"size": 5})
    with pytest.raises(TypeError, match="row\\['seed'\\]"):
        GridWorldEnv().reset({"seed": "3"})
    with pytest.raises(ValueError, match="size must be"):
        GridWorldEnv().reset({"seed": 1, "size": 2})
    with pytest.raises(ValueError, match="wall_density"):
        GridWorldEnv().reset({"seed": 1, "wall_density": 0.9})
    with pytest.raises(TypeError, match="dataset row"):
        GridWorldEnv().reset(3)
    with pytest.raises(ValueError, match="max_turns"):
        GridWorldEnv(max_turns=0)
    with pytest.raises(ValueError, match="invalid_action_penalty"):
        GridWorldEnv(invalid_action_penalty=-1)
    with pytest.raises(ValueError, match="max_episode_tokens"):
        GridWorldEnv(max_episode_tokens=0)
    with pytest.raises(KeyError, match="unknown environment 'maze'"):
        make_environment({"env": "maze"})
    with pytest.raises(KeyError, match="row\\['env'\\]"):
        make_environment({"seed": 1})
    with pytest.raises(TypeError, match="rejected options \\['colour'\\]"):
        make_environment({"env": "gridworld", "env_options": {"colour": "red"}})
    env = make_environment({"env": "taxi", "env_options": {"max_turns": 9}}, max_episode_tokens=64)
    assert isinstance(env, TaxiEnv) and env.max_turns == 9 and env.max_episode_tokens == 64


# -- FrozenLake -------------------------------------------------------------------------
def test_frozenlake_goal_and_hole_on_a_fixed_map():
    row = {"map": ["SF", "HG"]}
    env = FrozenLakeEnv()
    assert env.reset(row) == "A F\nH G"
    r = env.step("right")
    assert (r.reward, r.done, env.state()) == (0.0, False, (0, 1))
    r = env.step("Action: down")
    assert (r.reward, r.done, r.info["success"]) == (1.0, True, True)
    env.reset(row)
    r = env.step("south")
    assert r.done and not r.info["success"] and r.reward == 0.0 and "hole" in r.observation


def test_frozenlake_random_maps_are_seeded_and_solvable(bfs_plan):
    assert FrozenLakeEnv().reset({"seed": 4}) == FrozenLakeEnv().reset({"seed": 4})
    assert len({FrozenLakeEnv().reset({"seed": s}) for s in range(6)}) > 1
    env = FrozenLakeEnv()
    env.reset({"seed": 4, "size": 5})
    assert len(env.lake) == 5 and bfs_plan(env) is not None


def test_slippery_frozenlake_is_reproducible_with_the_same_seed():
    def run(seed):
        env = FrozenLakeEnv(is_slippery=True, max_turns=30)
        env.reset({"map": ["SFFF", "FFFF", "FFFF", "FFFG"], "seed": 0}, seed=seed)
        states = []
        for _ in range(12):
            if env.done:
                break
            env.step("right")
            states.append(env.state())
        return states

    assert run(1) == run(1)
    assert any(run(1) != run(s) for s in range(2, 8))  # the seed drives the slips


def test_frozenlake_bad_maps():
    with pytest.raises(ValueError, match="different lengths"):
        FrozenLakeEnv().reset({"map": ["SF", "G"]})
    with pytest.raises(ValueError, match="\\['X'\\]"):
        FrozenLakeEnv().reset({"map": ["SX", "FG"]})
    with pytest.raises(ValueError, match="exactly one S"):
        FrozenLakeEnv().reset({"map": ["SS", "FG"]})
    with pytest.raises(TypeError, match="list of strings"):
        FrozenLakeEnv().reset({"map": "SFFG"})


# -- Taxi -------------------------------------------------------------------------------
def taxi_plan(env: TaxiEnv) -> list[int]:
    """Shortest action sequence to a successful drop-off, by BFS on gymnasium's P table."""
    start = env.env.s
    queue, seen = deque([(start, [])]), {start}
    while queue:
        s, plan = queue.popleft()
        for a in range(6):
            _, s2, reward, done = env.env.P[s][a][0]
            if done:
                return plan + [a]
            if s2 not in seen:
                seen.add(s2)
                queue.append((s2, plan + [a]))
    raise AssertionError("taxi unsolvable")


def test_taxi_is_seeded_and_deliverable():
    a, b = TaxiEnv(), TaxiEnv()
    assert a.reset({"seed": 11}) == b.reset({"seed": 11}, seed=5)  # start from the row
    plan = taxi_plan(a)
    results = [a.step(f"<action>{a.actions[i]}</action>") for i in plan]
    assert [r.reward for r in results] == [-1.0] * (len(plan) - 1) + [20.0]
    assert a.success and results[-1].done and "Passenger delivered" in results[-1].observation
    assert not any(r.done for r in results[:-1])


def test_taxi_illegal_pickup_and_aliases():
    env = TaxiEnv()
    env.reset({"seed": 11})
    # seed 11 starts the taxi at row 0, column 3; the passenger waits at R, going to B
    assert env.state() == (0, 3, 0, 3)
    assert "row 0, column 3. Passenger waiting at R. Destination B." in env.render()
    r = env.step("pick up")  # alias of pickup, but the taxi is not at R
    assert r.reward == -10.0 and "Illegal pickup" in r.observation and env.state() == (0, 3, 0, 3)
    r = env.step("left")  # alias of west
    assert r.info["action"] == "west" and env.state() == (0, 2, 0, 3)
    r = env.step("drop off")
    assert r.info["action"] == "dropoff" and r.reward == -10.0


# -- CliffWalking -----------------------------------------------------------------------
def test_cliffwalking_cliff_and_goal():
    env = CliffWalkingEnv()
    assert env.reset({}).splitlines()[3] == "A C C C C C C C C C C G"
    r = env.step("right")
    assert r.reward == -100.0 and not r.done and env.state() == (3, 0) and "cliff" in r.observation
    rewards = [env.step(a).reward for a in ["up"] + ["right"] * 11 + ["down"]]
    assert rewards == [-1.0] * 13 and env.done and env.success
