"""SALT (arXiv 2510.20022) on hand-built trajectory groups; numbers computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit import ADVANTAGES
from rewardkit.types import RolloutBatch, Turn
from rewardkit_agents.graph import draw_graph
from rewardkit_agents.salt import SALT

SQ3_2 = math.sqrt(3) / 2  # GRPO advantage of scores [1, 0, 1, 0]: see FOUR below


def step_values(adv: torch.Tensor, batch: RolloutBatch) -> list[list[float]]:
    """The advantage of each step, checking it covers the step's tokens and nothing else."""
    out = []
    for i, turns in enumerate(batch.turns):
        values = []
        for turn in turns:
            span = adv[i, turn.start : turn.end]
            assert torch.all(span == span[0]), f"sample {i}: step tokens differ {span}"
            values.append(float(span[0]))
        out.append(values)
    assert torch.all(adv[batch.completion_mask == 0] == 0), "environment/pad tokens must be 0"
    return out


# One group of four trajectories (state, action, next_state, turn reward):
#   t0 R=1: s0 -a-> s1 -b-> s2      t1 R=0: s0 -a-> s1 -c-> s3
#   t2 R=1: s0 -d-> s4 -e-> s2      t3 R=0: s0 -f-> s6
# GRPO: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = sqrt(1/3), A = +-0.5 / sqrt(1/3)
#       = +-sqrt(3)/2 = +-0.866.
FOUR = [
    (0, 1.0, [("s0", "a", "s1", 0.0), ("s1", "b", "s2", 1.0)]),
    (0, 0.0, [("s0", "a", "s1", 0.0), ("s1", "c", "s3", 0.0)]),
    (0, 1.0, [("s0", "d", "s4", 0.0), ("s4", "e", "s2", 1.0)]),
    (0, 0.0, [("s0", "f", "s6", 0.0)]),
]


def test_registered_and_requires_turns():
    assert ADVANTAGES.get("agents.salt") is SALT
    assert SALT.requires == frozenset({"turns"})


def test_three_properties_on_a_hand_built_group(make_batch):
    batch = make_batch(FOUR)
    steps = step_values(SALT(eps=0.0)(batch), batch)
    a = SQ3_2
    # (s0,a,s1) is shared by t0 (+a) and t1 (-a): mean 0 -> moved toward 0.
    # Every other edge is seen once and keeps its trajectory's advantage.
    expected = [[0.0, a], [0.0, -a], [a, a], [-a]]
    for got, want in zip(steps, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    # Sum over all step occurrences equals plain GRPO's: 2a - 2a + 2a - a = a.
    salt_sum = sum(sum(v) for v in steps)
    grpo_sum = 2 * a - 2 * a + 2 * a - a
    assert salt_sum == pytest.approx(grpo_sum, abs=1e-6)


def test_an_episode_end_merges_with_the_same_transition_mid_episode(make_batch):
    """t0 ends with s1 -b-> s2; t1 takes s1 -b-> s2 and goes on. The state after t0's last
    step is its recorded next_state (s2), not its observation text ("You are at s2."), so
    the two occurrences are one edge. GRPO [1, 0] with eps 0: A = +-sqrt(2)/2."""
    a = math.sqrt(2) / 2
    batch = make_batch(
        [
            (0, 1.0, [("s0", "a", "s1", 0.0), ("s1", "b", "s2", 1.0)]),
            (0, 0.0, [("s0", "a", "s1", 0.0), ("s1", "b", "s2", 0.0), ("s2", "c", "s3", 0.0)]),
        ]
    )
    steps = step_values(SALT(eps=0.0)(batch), batch)
    assert steps[0] == pytest.approx([0.0, 0.0], abs=1e-6)  # both edges shared: +a and -a
    assert steps[1] == pytest.approx([0.0, 0.0, -a], abs=1e-6)


def test_rloo_trajectory_advantages_and_repeated_edges(make_batch):
    # RLOO with scores [1, 0]: A_0 = 1 - 0 = 1, A_1 = 0 - 1 = -1.
    # (s0,up,s0) occurs twice in t0 (+1, +1) and once in t1 (-1): mean 1/3.
    batch = make_batch(
        [
            (0, 1.0, [("s0", "up", "s0", 0), ("s0", "up", "s0", 0), ("s0", "right", "g", 1)]),
            (0, 0.0, [("s0", "up", "s0", 0), ("s0", "left", "x", 0)]),
        ]
    )
    steps = step_values(SALT(estimator="rloo")(batch), batch)
    assert steps[0] == pytest.approx([1 / 3, 1 / 3, 1.0])
    assert steps[1] == pytest.approx([1 / 3, -1.0])
    # sum: SALT 1/3*3 + 1 - 1 = 1; RLOO per step: 3 * 1 + 2 * (-1) = 1
    assert sum(map(sum, steps)) == pytest.approx(1.0)


def test_edges_do_not_merge_across_prompt_groups(make_batch):
    # Two groups with the same edge; each group of two has RLOO advantages +-1.
    batch = make_batch(
        [
            (0, 1.0, [("s0", "a", "s1", 0)]),
            (0, 0.0, [("s0", "b", "s2", 0)]),
            (1, 0.0, [("s0", "a", "s1", 0)]),
            (1, 1.0, [("s0", "b", "s2", 0)]),
        ]
    )
    steps = step_values(SALT(estimator="rloo")(batch), batch)
    assert steps == [[1.0], [-1.0], [-1.0], [1.0]]  # merged across groups it would be 0


def test_key_functions_transition_state_action_state(make_batch):
    # RLOO, scores [1, 0, 0]: A = [1 - 0, 0 - 1/2, 0 - 1/2] = [1, -0.5, -0.5].
    # Steps: t0 s0 -a-> s1, t1 s0 -a-> s2 (same state-action, other outcome), t2 s0 -b-> s3.
    trajectories = [
        (0, 1.0, [("s0", "a", "s1", 0)]),
        (0, 0.0, [("s0", "a", "s2", 0)]),
        (0, 0.0, [("s0", "b", "s3", 0)]),
    ]
    batch = make_batch(trajectories)
    transition = step_values(SALT(estimator="rloo")(batch), batch)
    assert sum(transition, []) == pytest.approx([1.0, -0.5, -0.5])  # all edges distinct
    state_action = step_values(SALT(key="state_action", estimator="rloo")(batch), batch)
    assert sum(state_action, []) == pytest.approx([0.25, 0.25, -0.5])  # (1 - 0.5) / 2
    state = step_values(SALT(key="state", estimator="rloo")(batch), batch)
    assert sum(state, []) == pytest.approx([0.0, 0.0, 0.0])  # (1 - 0.5 - 0.5) / 3


def test_custom_key_callable_and_import_path(make_batch):
    batch = make_batch(FOUR)
    # keying on the action alone merges t0 and t1's step "a" (+a, -a -> 0) as before, and
    # nothing else (b, c, d, e, f are distinct), so the result equals the default here
    by_action = step_values(SALT(key=lambda s, a, s2: a, eps=0.0)(batch), batch)
    assert by_action[0] == pytest.approx([0.0, SQ3_2], abs=1e-6)
    by_path = SALT(key="operator:getitem")  # any importable callable is accepted
    assert callable(by_path.key_fn)


def test_canon_merges_case_and_whitespace(make_batch):
    # RLOO [1, 0] -> +1, -1; the two steps are one edge after canon(): mean 0.
    batch = make_batch(
        [
            (0, 1.0, [("Room  A", "Go North ", "room b", 0)]),
            (0, 0.0, [("room a", "go north", "ROOM B", 0)]),
        ]
    )
    assert step_values(SALT(estimator="rloo")(batch), batch) == [[0.0], [0.0]]


def test_action_identity_is_the_committed_action_by_default(make_batch):
    # RLOO [1, 0] -> +1, -1. Both turns commit to "up" after different reasoning: with the
    # default action_fn they are one edge (mean 0); with action_fn="text" two edges.
    batch = make_batch(
        [
            (0, 1.0, [("s0", "The key is above. <action>UP</action>", "s1", 0)]),
            (0, 0.0, [("s0", "Hmm.\nAction: up.", "s1", 0)]),
        ]
    )
    assert step_values(SALT(estimator="rloo")(batch), batch) == [[0.0], [0.0]]
    as_text = SALT(estimator="rloo", action_fn="text")(batch)
    assert step_values(as_text, batch) == [[1.0], [-1.0]]
    with pytest.raises(ValueError, match="action_fn must be"):
        SALT(action_fn="tags")


def test_observation_states_when_turns_carry_no_state(make_batch):
    # Without turn.state, s_0 is the shared start and s_{t+1} the observation after step t.
    # t0: start -a-> "x" -b-> "y"; t1: start -a-> "x" -c-> "z"; RLOO [1, 0] -> +1, -1.
    batch = make_batch(
        [
            (0, 1.0, [("ignored", "a", "x", 0), ("ignored", "b", "y", 0)]),
            (0, 0.0, [("ignored", "a", "X ", 0), ("ignored", "c", "z", 0)]),
        ],
        state_in_turns=False,
    )
    steps = step_values(SALT(estimator="rloo")(batch), batch)
    assert steps == [[0.0, 1.0], [0.0, -1.0]]


def test_policy_tokens_outside_turns_keep_trajectory_advantage(make_batch):
    batch = make_batch([(0, 1.0, [("s0", "a", "s1", 0)]), (0, 0.0, [("s0", "a", "s1", 0)])])
    # add a trailing policy token (e.g. EOS) after the last observation of sample 0
    batch.completion_mask = torch.cat([batch.completion_mask, torch.tensor([[1.0], [0.0]])], 1)
    adv = SALT(estimator="rloo")(batch)
    assert adv[0].tolist() == [0.0, 0.0, 0.0, 1.0]  # step merged to 0; EOS keeps A_traj = 1
    assert adv[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_graph_nodes_edges_and_png(make_batch, tmp_path):
    batch = make_batch(FOUR)
    graph = SALT(eps=0.0).graph(batch)
    assert set(graph.nodes) == {"s0", "s1", "s2", "s3", "s4", "s6"}
    assert graph.number_of_edges() == 6  # a (merged), b, c, d, e, f
    shared = graph.get_edge_data("s0", "s1")["a"]
    assert shared["count"] == 2 and shared["samples"] == [0, 1]
    assert shared["advantage"] == pytest.approx(0.0, abs=1e-6)
    assert shared["traj_advantage"] == pytest.approx(0.0, abs=1e-6)
    assert graph.get_edge_data("s1", "s2")["b"]["advantage"] == pytest.approx(SQ3_2, abs=1e-6)
    assert graph.nodes["s0"]["start"] and graph.nodes["s0"]["visits"] == 4
    assert not graph.nodes["s1"]["start"] and graph.nodes["s1"]["visits"] == 2
    path = draw_graph(graph, tmp_path / "graph.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_graph_needs_a_group_when_several(make_batch):
    batch = make_batch([(0, 1.0, [("s", "a", "t", 0)]), (1, 0.0, [("s", "a", "t", 0)])])
    with pytest.raises(ValueError, match="pass group"):
        SALT().graph(batch)
    assert SALT().graph(batch, group=1).number_of_edges() == 1
    with pytest.raises(ValueError, match="group 7"):
        SALT().graph(batch, group=7)


def test_bad_input_is_rejected(make_batch):
    batch = make_batch(FOUR)
    with pytest.raises(ValueError, match="unknown SALT key"):
        SALT(key="edges")
    with pytest.raises(ValueError, match="unknown estimator"):
        SALT(estimator="ppo")
    with pytest.raises(ValueError, match="cannot be imported"):
        SALT(key="nowhere_module:fn")
    no_turns = RolloutBatch(batch.scores, batch.groups, batch.completion_mask, turns=None)
    with pytest.raises(ValueError, match="batch.turns is None"):
        SALT()(no_turns)
    short = RolloutBatch(batch.scores, batch.groups, batch.completion_mask, turns=batch.turns[:2])
    with pytest.raises(ValueError, match="2 entries for 4 samples"):
        SALT()(short)
    bad_span = make_batch(FOUR)
    bad_span.turns[1][1] = Turn(start=5, end=99, action="c")
    with pytest.raises(ValueError, match="sample 1 turn 1 spans tokens"):
        SALT()(bad_span)
    overlapping = make_batch(FOUR)
    overlapping.turns[0][1] = Turn(start=1, end=4, action="b")
    with pytest.raises(ValueError, match="sample 0 turn 1"):
        SALT()(overlapping)
    nan = make_batch(FOUR)
    nan.scores[2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite for samples \\[2\\]"):
        SALT()(nan)
    float_groups = make_batch(FOUR)
    float_groups.groups = float_groups.groups.float()
    with pytest.raises(ValueError, match="integer prompt indices"):
        SALT()(float_groups)
    unhashable = make_batch([(0, 1.0, [({"pos": [1, 2]}, "a", "t", 0)])])
    assert SALT()(unhashable).shape == (1, 3)  # dicts/lists are canonicalised to tuples
    broken = make_batch([(0, 1.0, [(object, "a", "t", 0)])])
    broken.turns[0][0].state = bytearray(b"x")
    with pytest.raises(TypeError, match="must be hashable"):
        SALT()(broken)


def test_singleton_group_gets_zero(make_batch):
    # GRPO and RLOO over a group of one: no other sample to compare with -> 0 (as core)
    batch = make_batch([(0, 1.0, [("s", "a", "t", 0), ("t", "b", "u", 1)])])
    assert torch.all(SALT()(batch) == 0)
    assert torch.all(SALT(estimator="rloo")(batch) == 0)


@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
def test_unmerged_salt_equals_core_estimator_and_sums_match(make_batch, estimator):
    # With a key that never merges (each occurrence its own edge) SALT is exactly core's
    # outcome estimator; with the default key the per-group sum over steps is unchanged.
    batch = make_batch(FOUR + [(1, 3.0, [("s0", "a", "s1", 0)]), (1, 1.0, [("s0", "a", "s1", 0)])])
    core = ADVANTAGES.get(estimator)()(batch)
    unique = SALT(key=lambda s, a, s2: object(), estimator=estimator)(batch)
    assert torch.allclose(unique, core, atol=1e-6)
    merged = step_values(SALT(estimator=estimator)(batch), batch)
    plain = step_values(core, batch)
    for group in (0, 1):
        rows = [i for i in range(6) if int(batch.groups[i]) == group]
        assert sum(sum(merged[i]) for i in rows) == pytest.approx(sum(sum(plain[i]) for i in rows))
