"""The local view, the flawed expert, its demonstrations, the warm start, success rates and
the bootstrap used by bench/agents_experiment.py."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.rollout import Generated, encode_prompts, multi_turn_rollout
from rewardkit_agents import FrozenLakeTask, GridWorldTask
from rewardkit_agents.envs import FrozenLakeEnv, GridWorldEnv, TaxiEnv
from rewardkit_agents.imitation import (
    episode_successes,
    expert_demonstrations,
    random_valid_success,
    rollout_success,
    turn_contexts,
    warm_start,
)
from rewardkit_agents.planning import FlawedExpert, goal_distances, shortest_plan, state_graph
from rewardkit_agents.stats import hierarchical_bootstrap

# S . .
# F H .      the only way: right, right, down, down (H blocks the middle)
# F F G  <- or down, down, right, right; (1, 0) and (0, 1) are both 3 from the goal
LAKE = ["SFF", "FHF", "FFG"]


def lake_env(max_turns: int = 8, observation: str = "grid") -> FrozenLakeEnv:
    env = FrozenLakeEnv(max_turns=max_turns, observation=observation)
    env.reset({"map": LAKE})
    return env


# -- the local view ----------------------------------------------------------------------
def test_local_view_of_the_frozen_lake():
    env = lake_env(observation="local")
    assert env.view() == "goal: 2 down 2 right\nleft edge, down ice, right ice, up edge"
    r = env.step("right")
    assert r.observation == "You moved right.\n\ngoal: 2 down 1 right\n" + (
        "left ice, down hole, right ice, up edge"
    )
    env.step("right")
    r = env.step("down")
    assert r.observation.endswith("goal: 1 down\nleft hole, down goal, right edge, up ice")
    r = env.step("down")
    assert r.info["success"] and r.observation.endswith(
        "goal: here\nleft ice, down edge, right edge, up ice"
    )


def test_local_view_of_the_grid_world_targets_the_key_then_the_door():
    env = GridWorldEnv(observation="local")
    env.reset({"seed": 0, "size": 4, "wall_density": 0.0})
    # a hand-made layout: A at (1, 1), key at (1, 3), door at (3, 1), a wall at (0, 1)
    env.agent, env.key, env.door, env.walls, env.has_key = (1, 1), (1, 3), (3, 1), {(0, 1)}, False
    assert env.view() == "key: 2 right\nup wall, down open, left open, right open"
    env.step("right")
    assert env.view() == "key: 1 right\nup open, down open, left open, right key"
    r = env.step("right")
    assert "picked up the key" in r.observation
    assert r.observation.endswith("door: 2 down 2 left\nup open, down open, left open, right edge")
    env.agent = (2, 1)
    assert env.view() == "door: 1 down\nup open, down door, left open, right open"


def test_grid_observation_is_unchanged_by_default_and_invalid_actions_show_the_view():
    grid = lake_env()
    assert grid.view() == grid.render() == "A F F\nF H F\nF F G"
    local = lake_env(observation="local")
    r = local.step("jump")
    assert r.observation.endswith("\n\n" + local.local_view()) and r.info["invalid_action"]


def test_observation_option_is_checked():
    with pytest.raises(ValueError, match="observation must be one of"):
        FrozenLakeEnv(observation="pixels")
    with pytest.raises(ValueError, match=r"taxi: observation must be one of \['grid'\]"):
        TaxiEnv(observation="local")
    task = GridWorldTask(num_train=1, observation="local")
    env = task.make_environment(task.rows("train")[0])
    assert env.observation == "local"


# -- the flawed expert -------------------------------------------------------------------
def test_state_graph_and_distances_by_hand():
    graph = state_graph(lake_env())
    assert set(graph) == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)}
    assert graph[(0, 1)]["down"] == ((1, 1), False, True)  # the hole ends the episode
    assert graph[(1, 2)]["down"] == ((2, 2), True, True)
    assert goal_distances(graph) == {
        (0, 0): 4,
        (0, 1): 3,
        (1, 0): 3,
        (0, 2): 2,
        (2, 0): 2,
        (1, 2): 1,
        (2, 1): 1,
    }


def test_flawed_expert_choices_by_hand():
    expert = FlawedExpert(lake_env(), p_wrong=0.5, rng=random.Random(0))
    # at the start both moves are optimal; up/left bump the edge (no move): no wrong turn
    assert expert.choices((0, 0)) == (["down", "right"], [])
    # at (0, 1): right is optimal, left goes back (a wrong turn), down is the hole (not one)
    assert expert.choices((0, 1)) == (["right"], ["left"])


def test_flawed_expert_without_errors_is_a_shortest_path():
    for seed in range(20):
        task = GridWorldTask(num_train=20, max_turns=15)
        row = task.rows("train")[seed]
        env = task.make_environment(row)
        env.reset(row)
        shortest = len(shortest_plan(copy.deepcopy(env)))
        expert = FlawedExpert(env, p_wrong=0.0, rng=random.Random(seed))
        actions = 0
        while not env.done:
            action, wrong = expert.act(env.state())
            assert not wrong
            env.step(action)
            actions += 1
        assert env.success and actions == shortest


def test_flawed_expert_takes_wrong_turns_at_the_rate_asked():
    expert = FlawedExpert(lake_env(), p_wrong=0.3, rng=random.Random(1))
    wrong = sum(expert.act((0, 1))[1] for _ in range(2000))  # a junction: one wrong turn
    assert abs(wrong / 2000 - 0.3) < 0.04  # binomial sd 0.010
    always = FlawedExpert(lake_env(), p_wrong=1.0, rng=random.Random(1))
    assert always.act((0, 1)) == ("left", True)
    assert always.act((0, 0))[1] is False  # no wrong turn there: an optimal move
    with pytest.raises(ValueError, match="p_wrong"):
        FlawedExpert(lake_env(), p_wrong=1.5, rng=random.Random(0))


# -- demonstrations, rollouts, success rates --------------------------------------------
class ReplayBackend:
    """Plays the demonstrations back: for each context it returns the action the expert
    took in exactly that context, and fails the test on a context it has not seen."""

    def __init__(self, examples):
        pairs = [pair for example in examples for pair in turn_contexts(example)]
        self.actions = {tuple(context): action for context, action in pairs}

    def generate(self, prompts, max_new_tokens, greedy=False):
        out = []
        for prompt in prompts:
            assert tuple(prompt) in self.actions, "a rollout context no demonstration has"
            out.append(Generated(self.actions[tuple(prompt)], False))
        return out


def test_demonstrations_are_the_contexts_of_multi_turn_rollout():
    _, tokenizer = build_tiny_model(seed=0, num_layers=1, hidden_size=16, num_heads=2)
    task = FrozenLakeTask(num_train=6, max_turns=8, observation="local")
    rows = task.rows("train")
    demos = expert_demonstrations(task, rows, tokenizer, 32, p_wrong=0.0)
    assert demos.episodes == 6 and demos.expert_success == 1.0 and demos.wrong_turns == 0
    assert len(demos.examples) == 6 and demos.actions == 6 * 6  # 4x4 lakes: six moves S -> G
    # one layout at a time: two layouts can show the same local view and need other moves
    for row in rows:
        mine = expert_demonstrations(task, [row], tokenizer, 32, p_wrong=0.0).examples
        prompts, _ = encode_prompts(tokenizer, [task.prompt(row)], 32)
        samples = multi_turn_rollout(
            ReplayBackend(mine),
            tokenizer,
            task.make_environment,
            [row],
            prompts,
            [task.prompt(row)],
            1,
            8,
            task.max_turns,
            task.max_episode_tokens,
        )
        assert episode_successes(samples) == [[1.0]]
    # the labelled tokens of each example are its actions, each ended by <eos>
    for example in demos.examples:
        pairs = turn_contexts(example)
        assert len(pairs) == 6
        for _context, action in pairs:
            assert tokenizer.decode(action[:-1]) in FrozenLakeEnv.actions
            assert action[-1] == tokenizer.eos_token_id


def test_flawed_demonstrations_fail_as_often_as_the_expert():
    _, tokenizer = build_tiny_model(seed=0, num_layers=1, hidden_size=16, num_heads=2)
    task = FrozenLakeTask(num_train=1, max_turns=3, observation="local")
    rows = [{"env": "frozenlake", "map": LAKE, "env_options": dict(task.env_options)}]
    demos = expert_demonstrations(task, rows, tokenizer, 32, p_wrong=1.0, episodes_per_row=5)
    # every episode: an optimal first move, then a wrong turn back, then the turn limit
    assert demos.episodes == 5 and demos.successes == 0 and demos.actions == 15
    assert demos.wrong_turns == 5


def test_random_valid_success_by_hand():
    task = FrozenLakeTask(num_train=1, max_turns=1)
    row = {"env": "frozenlake", "map": ["SG"], "env_options": dict(task.env_options)}
    (rate,) = random_valid_success(task, [row], episodes=1000, seed=0)
    assert abs(rate - 0.25) < 0.05  # one action of four reaches G; sd 0.014
    task = FrozenLakeTask(num_train=1, max_turns=50)
    row = {"env": "frozenlake", "map": ["SG"], "env_options": dict(task.env_options)}
    assert random_valid_success(task, [row], episodes=20) == [1.0]


def test_episode_successes_groups_by_prompt_and_rejects_single_turn_samples():
    class S:
        def __init__(self, group, success):
            self.group, self.meta = group, {"episode": {"success": success}}

    samples = [S(1, True), S(0, False), S(1, False), S(0, True), S(0, True)]
    assert episode_successes(samples) == [[0.0, 1.0, 1.0], [1.0, 0.0]]
    bad = S(0, True)
    bad.meta = {}
    with pytest.raises(ValueError, match="multi-turn"):
        episode_successes([bad])


def test_rollout_success_averages_each_rows_episodes():
    class Trainer:
        def rollout(self, rows, greedy=False, generations=None):
            self.asked = (len(rows), greedy, generations)
            results = [[True, False, False, False], [True, True, True, False]]
            return [
                type("S", (), {"group": g, "meta": {"episode": {"success": s}}})()
                for g, outcomes in enumerate(results)
                for s in outcomes
            ]

    trainer = Trainer()
    assert rollout_success(trainer, [{}, {}], episodes=4) == [0.25, 0.75]
    assert trainer.asked == (2, False, 4)


def test_warm_start_teaches_the_expert_action_of_each_context():
    torch.manual_seed(0)
    model, tokenizer = build_tiny_model(seed=0, num_layers=1, hidden_size=32, num_heads=2)
    task = FrozenLakeTask(num_train=1, max_turns=8, observation="local")
    rows = [{"env": "frozenlake", "map": LAKE, "env_options": dict(task.env_options)}]
    demos = expert_demonstrations(task, rows, tokenizer, 16, p_wrong=0.0, episodes_per_row=4)
    losses = warm_start(model, tokenizer, demos.examples, steps=150, batch_size=4)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    # the warm-started policy, greedy, walks the lake to the goal
    prompts, _ = encode_prompts(tokenizer, [task.prompt(rows[0])], 16)
    from rewardkit.trainer.rollout import HFGenerate

    samples = multi_turn_rollout(
        HFGenerate(lambda: model, tokenizer),
        tokenizer,
        task.make_environment,
        rows,
        prompts,
        [task.prompt(rows[0])],
        1,
        8,
        task.max_turns,
        task.max_episode_tokens,
        greedy=True,
    )
    assert episode_successes(samples) == [[1.0]]


# -- the bootstrap -----------------------------------------------------------------------
def test_hierarchical_bootstrap_by_hand():
    assert hierarchical_bootstrap(np.full((3, 5), 0.4)) == pytest.approx((0.4, 0.4, 0.4))
    # two seeds that disagree completely: the resampled seed means are 0, 0.5, 1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1]
    mean, low, high = hierarchical_bootstrap([[0.0, 0.0], [1.0, 1.0]])
    assert (mean, low, high) == (0.5, 0.0, 1.0)
    # one seed: only layouts vary; the mean of layouts [0, 1] resampled twice is 0, .5 or 1
    mean, low, high = hierarchical_bootstrap([[0.0, 1.0, 0.0, 1.0] * 25])
    assert mean == 0.5 and 0.35 < low < 0.45 and 0.55 < high < 0.65  # sd 0.05
    with pytest.raises(ValueError, match="seeds, layouts"):
        hierarchical_bootstrap([1.0, 2.0])
