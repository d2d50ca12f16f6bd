"""Supervised warm start of a policy on a flawed expert's episodes, and success rates.

A policy that cannot read the world gives RL nothing to work with; one that imitates a
perfect expert leaves RL nothing to do. The warm start here imitates `FlawedExpert`
(planning.py): shortest paths with wrong turns at junctions, so the warm-started policy
reads the state (it beats random valid actions) and still fails often when it samples.

`expert_demonstrations` lays each expert episode out token by token exactly as core's
`multi_turn_rollout` lays out an episode (the prompt cut to its last max_prompt_length
tokens, the first observation, then per turn: action, <eos>, observation) as one
supervised example whose labels are the action tokens (with their <eos>) and nothing
else: one forward pass trains every turn of the episode, each on exactly the context the
policy sees at that turn (causal attention). `turn_contexts` splits an example back into
(context, action) pairs. `warm_start` trains with `rewardkit.sft.train_supervised`. `rollout_success` and `random_valid_success`
measure success rates on rows (held-out layouts in the experiment).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from rewardkit.sft import IGNORE, Encoded, train_supervised
from rewardkit.trainer.rollout import encode_prompts
from rewardkit_agents.planning import FlawedExpert


@dataclass
class Demonstrations:
    """Supervised examples (one per expert episode), and what the expert did."""

    examples: list[Encoded] = field(default_factory=list)
    episodes: int = 0
    successes: int = 0
    wrong_turns: int = 0
    actions: int = 0

    @property
    def expert_success(self) -> float:
        return self.successes / max(self.episodes, 1)


def expert_demonstrations(
    task,
    rows: list[dict[str, Any]],
    tokenizer,
    max_prompt_length: int,
    p_wrong: float,
    episodes_per_row: int = 1,
    seed: int = 0,
) -> Demonstrations:
    """`episodes_per_row` episodes of `FlawedExpert(p_wrong)` on each row, as supervised
    examples whose contexts are the ones the policy sees in `multi_turn_rollout`."""
    rng = random.Random(seed)
    eos = tokenizer.eos_token_id
    prompts, _ = encode_prompts(
        tokenizer, [task.prompt(r) for r in rows], max_prompt_length, task.name
    )
    demos = Demonstrations()
    for row, prompt in zip(rows, prompts, strict=True):
        start = task.make_environment(row)
        first = start.reset(row, seed=0)
        expert = FlawedExpert(start, p_wrong, rng)
        for _ in range(episodes_per_row):
            env = copy.deepcopy(start)
            ids = prompt + tokenizer.encode(first, add_special_tokens=False)
            labels = [IGNORE] * len(ids)
            while not env.done:
                action, wrong = expert.act(env.state())
                action_ids = tokenizer.encode(action, add_special_tokens=False) + [eos]
                result = env.step(action)
                ids, labels = ids + action_ids, labels + action_ids
                if not result.done:  # the rollout appends no observation after the end
                    observation = tokenizer.encode(result.observation, add_special_tokens=False)
                    ids, labels = ids + observation, labels + [IGNORE] * len(observation)
                demos.wrong_turns += wrong
                demos.actions += 1
            # (ids, no completion, labels): sft.completion_loss trains the labelled tokens
            demos.examples.append((ids, [], labels))
            demos.episodes += 1
            demos.successes += env.success
    return demos


def turn_contexts(example: Encoded) -> list[tuple[list[int], list[int]]]:
    """The (context ids, action ids) pairs of one episode example: each labelled span and
    the tokens before it."""
    ids, _, labels = example
    pairs, k = [], 0
    while k < len(ids):
        if labels[k] == IGNORE:
            k += 1
            continue
        end = k
        while end < len(ids) and labels[end] != IGNORE:
            end += 1
        pairs.append((ids[:k], ids[k:end]))
        k = end
    return pairs


def warm_start(
    model,
    tokenizer,
    examples: list[Encoded],
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Supervised training on pre-encoded examples: `steps` shuffled mini-batches, a
    warm-up over the first tenth, then a linear decay to 0. Returns the losses."""
    if not examples:
        raise ValueError("warm_start needs at least one example")
    rng = random.Random(seed)
    batches = (rng.sample(examples, min(batch_size, len(examples))) for _ in range(steps))
    warmup = max(steps // 10, 1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return train_supervised(
        model,
        batches,
        steps,
        pad,
        learning_rate,
        lr_factor=lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps),
    )


def episode_successes(samples) -> list[list[float]]:
    """Per row (prompt group, in order), the success (1.0 / 0.0) of each episode, read
    from `sample.meta["episode"]["success"]` as `multi_turn_rollout` writes it."""
    by_group: dict[int, list[float]] = {}
    for sample in samples:
        episode = (sample.meta or {}).get("episode")
        if episode is None or "success" not in episode:
            raise ValueError(
                "episode_successes needs multi-turn samples (meta['episode']['success'])"
            )
        by_group.setdefault(sample.group, []).append(float(bool(episode["success"])))
    return [by_group[g] for g in sorted(by_group)]


def rollout_success(trainer, rows, episodes: int, greedy: bool = False) -> list[float]:
    """Per row, the policy's success rate over `episodes` episodes (sampled at the
    trainer's temperature, or greedy), through the trainer's own rollout."""
    import torch

    with torch.no_grad():
        samples = trainer.rollout(rows, greedy=greedy, generations=episodes)
    return [sum(s) / len(s) for s in episode_successes(samples)]


def random_valid_success(task, rows, episodes: int, seed: int = 0) -> list[float]:
    """Per row, the success rate of uniformly random valid actions (`episodes` each)."""
    rng = random.Random(seed)
    rates = []
    for row in rows:
        start = task.make_environment(row)
        start.reset(row, seed=0)
        wins = 0
        for _ in range(episodes):
            env = copy.deepcopy(start)
            while not env.done:
                env.step(rng.choice(env.actions))
            wins += env.success
        rates.append(wins / episodes)
    return rates
