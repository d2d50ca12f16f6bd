"""The environments, reward and estimators through core's `multi_turn_rollout`.

A scripted backend plays two episodes of one grid-world layout: the shortest plan (a
success) and the same plan with its last move replaced by an invalid action (a failure at
the turn limit). Both share every state, so SALT and GiGPO have closed-form answers.
"""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.trainer.rollout import Generated, multi_turn_rollout
from rewardkit.types import RolloutBatch
from rewardkit_agents import SALT, EpisodeSuccess, GiGPO, GridWorldTask


class CharTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


class ScriptedBackend:
    """Turn k of episode j writes scripts[j][k]; every episode is active every turn."""

    def __init__(self, scripts):
        self.scripts, self.turn = scripts, 0

    def generate(self, prompts, max_new_tokens, greedy=False):
        assert len(prompts) == len(self.scripts)
        out = [Generated(CharTokenizer().encode(s[self.turn]), False) for s in self.scripts]
        self.turn += 1
        return out


@pytest.fixture
def rollout_batch(bfs_plan):
    probe = GridWorldTask(num_train=1)
    row = probe.rows("train")[0]
    env = probe.make_environment(row)
    env.reset(row)
    plan = bfs_plan(env)
    assert len(plan) >= 3
    task = GridWorldTask(num_train=1, max_turns=len(plan))
    row = task.rows("train")[0]
    good = [f"<action>{a}</action>" for a in plan]
    bad = good[:-1] + ["I fly away"]
    tok = CharTokenizer()
    samples = multi_turn_rollout(
        ScriptedBackend([good, bad]),
        tok,
        task.make_environment,
        [row],
        [tok.encode(task.prompt(row))],
        [task.prompt(row)],
        num_generations=2,
        max_new_tokens=64,
        max_turns=len(plan),
        max_episode_tokens=100_000,
    )
    outputs = EpisodeSuccess()(samples)
    return RolloutBatch.from_samples(samples, outputs), samples, outputs, len(plan)


def test_rollout_records_turns_states_and_outcome(rollout_batch):
    batch, samples, outputs, n = rollout_batch
    assert [o.score for o in outputs] == [1.0, 0.0]
    assert [s.meta["episode"]["invalid_actions"] for s in samples] == [0, 1]
    for sample in samples:
        assert len(sample.turns) == n
        assert [t.state for t in sample.turns] == [t.state for t in samples[0].turns]
        # next_state: the state after each action, the next turn's state before it
        assert [t.next_state for t in sample.turns[:-1]] == [t.state for t in sample.turns[1:]]
        assert sample.turns[-1].next_state is not None
        for turn in sample.turns:  # the action span holds the action's tokens, mask 1
            assert sample.completion_mask[turn.start : turn.end] == [1] * (turn.end - turn.start)
            assert (
                CharTokenizer().decode(sample.completion_ids[turn.start : turn.end]) == turn.action
            )
    assert 0 in samples[0].completion_mask  # observation tokens are masked


def test_salt_zeroes_the_shared_prefix(rollout_batch):
    batch, samples, _, n = rollout_batch
    adv = SALT()(batch)
    # GRPO over [1, 0]: mean 0.5, std sqrt(0.5) -> A = +-0.5 / (0.70711 + 1e-4) = +-0.70701.
    # The first n-1 steps are shared edges (+A and -A): 0. The last steps differ: +-A.
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    for i, sign in ((0, 1), (1, -1)):
        turns = samples[i].turns
        for turn in turns[:-1]:
            assert torch.all(adv[i, turn.start : turn.end] == 0)
        last = adv[i, turns[-1].start : turns[-1].end]
        assert torch.allclose(last, torch.full_like(last, sign * a), atol=1e-5)
    assert torch.all(adv[batch.completion_mask == 0] == 0)


def test_gigpo_on_shared_anchor_states(rollout_batch):
    batch, samples, _, n = rollout_batch
    adv = GiGPO()(batch)
    # A^E = +-0.5 / (sqrt(0.5) + 1e-6) = +-0.70711. Every anchor state holds two steps with
    # returns {0.95^(n-1-t), 0}: centred +-x/2, std x/sqrt(2) -> A^S = +-0.70711.
    # Total +-(0.70711 + 0.70711) = +-1.41421 on every step.
    e = 0.5 / (math.sqrt(0.5) + 1e-6)
    for i, sign in ((0, 1), (1, -1)):
        for t, turn in enumerate(samples[i].turns):
            x = 0.95 ** (n - 1 - t)
            s = (x / 2) / (x / math.sqrt(2) + 1e-6)
            span = adv[i, turn.start : turn.end]
            assert torch.allclose(span, torch.full_like(span, sign * (e + s)), atol=1e-5)


def test_an_action_ended_by_eos_is_the_action_without_it():
    """A policy ends its action with <eos> (HFGenerate keeps it in the ids): the action the
    environment parses is the decoded text without special tokens, so "right<eos>" is the
    valid action "right", not an invalid one."""
    from rewardkit.tiny import build_tokenizer
    from rewardkit_agents import FrozenLakeTask

    tok = build_tokenizer()
    task = FrozenLakeTask(num_train=1, max_turns=2)
    row = {"env": "frozenlake", "map": ["SFG"], "env_options": dict(task.env_options)}

    class Right:
        def generate(self, prompts, max_new_tokens, greedy=False):
            ids = tok.encode("right", add_special_tokens=False) + [tok.eos_token_id]
            return [Generated(ids, False) for _ in prompts]

    (sample,) = multi_turn_rollout(
        Right(), tok, task.make_environment, [row], [tok.encode("go")], ["go"], 1, 8, 2, 500
    )
    assert [t.action for t in sample.turns] == ["right", "right"]
    assert sample.meta["episode"]["success"] and sample.meta["episode"]["invalid_actions"] == 0
