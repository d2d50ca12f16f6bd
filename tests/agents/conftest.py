"""Shared helpers: hand-made multi-turn batches (SALT, GiGPO) and a BFS planner (envs)."""

from __future__ import annotations

import pytest
import torch

from rewardkit.types import RolloutBatch, Turn
from rewardkit_agents.planning import shortest_plan

# Each turn is 2 policy tokens followed by 1 observation token (completion_mask 0).
TOKENS_PER_ACTION = 2


def build_batch(trajectories, state_in_turns: bool = True) -> RolloutBatch:
    """trajectories: list of (group, score, steps), steps a list of
    (state, action, next_state, reward). Turn t spans tokens [3t, 3t + 2).

    With `state_in_turns` each turn records the environment's state before and after the
    action (Turn.state, Turn.next_state) and an observation text that is *not* the state
    (as in a real environment: "You are at s1." against the state "s1"), so that keying a
    state by its observation anywhere shows up as a missed merge. Without it, turns carry
    no state and the observation is the state's name."""
    turns_list, masks, scores, groups = [], [], [], []
    for group, score, steps in trajectories:
        turns, mask = [], []
        for t, (state, action, next_state, reward) in enumerate(steps):
            start = 3 * t
            turns.append(
                Turn(
                    start=start,
                    end=start + TOKENS_PER_ACTION,
                    action=action,
                    observation=f"You are at {next_state}." if state_in_turns else next_state,
                    state=state if state_in_turns else None,
                    reward=reward,
                    next_state=next_state if state_in_turns else None,
                )
            )
            mask += [1] * TOKENS_PER_ACTION + [0]
        turns_list.append(turns)
        masks.append(mask)
        scores.append(score)
        groups.append(group)
    T = max(len(m) for m in masks)
    completion_mask = torch.zeros(len(masks), T)
    for i, m in enumerate(masks):
        completion_mask[i, : len(m)] = torch.tensor(m, dtype=torch.float)
    return RolloutBatch(
        scores=torch.tensor(scores, dtype=torch.float),
        groups=torch.tensor(groups),
        completion_mask=completion_mask,
        turns=turns_list,
    )


@pytest.fixture
def make_batch():
    return build_batch


@pytest.fixture
def bfs_plan():
    return shortest_plan
