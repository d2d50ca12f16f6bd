"""`agents.success`: the default reward of the agent tasks, 1 if the episode succeeded.

When the rollout loop recorded the episode's outcome (``sample.meta["episode"]`` with
``success`` and ``invalid_actions``, as rewardkit's `multi_turn_rollout` does), that is
used. Otherwise the reward rebuilds the environment from the sample's dataset row (``sample.meta``, see
`envs.make_environment`) and replays the recorded actions (``turn.action``), so it does
not depend on how the rollout loop stored the environment's info. The built-in
environments are deterministic for a row (and their stochastic variants are seeded by
the row when reset gets no seed), so the replay is exact; where a turn recorded its
state, the replay checks it and raises on any divergence instead of guessing.

score = 1[success] - invalid_action_penalty * (number of invalid actions).
"""

from __future__ import annotations

from rewardkit.types import RewardOutput, Sample
from rewardkit_agents.envs import make_environment


class EpisodeSuccess:
    """Reward `agents.success` (option: invalid_action_penalty, default 0)."""

    def __init__(self, invalid_action_penalty: float = 0.0):
        if invalid_action_penalty < 0:
            raise ValueError(f"invalid_action_penalty must be >= 0, got {invalid_action_penalty}")
        self.invalid_action_penalty = invalid_action_penalty

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        return [self.score(i, sample) for i, sample in enumerate(samples)]

    def score(self, index: int, sample: Sample) -> RewardOutput:
        turns = sample.turns or []
        episode = sample.meta.get("episode")
        if isinstance(episode, dict) and "success" in episode:
            success = bool(episode["success"])
            invalid = int(episode.get("invalid_actions", 0))
            return self._output(success, invalid, len(turns), source="rollout")
        env = make_environment(sample.meta)
        env.reset(sample.meta)
        for k, turn in enumerate(turns):
            if env.done:
                raise ValueError(
                    f"agents.success: sample {index} has {len(turns)} turns but its episode "
                    f"ended after turn {k - 1}"
                )
            if turn.state is not None and turn.state != env.state():
                raise ValueError(
                    f"agents.success: sample {index} turn {k}: the replay is in state "
                    f"{env.state()!r} but the rollout recorded {turn.state!r} (was reset "
                    f"called with a seed on a stochastic environment?)"
                )
            env.step(turn.action)
        return self._output(bool(env.success), env.invalid_actions, len(turns), source="replay")

    def _output(self, success: bool, invalid: int, turns: int, source: str) -> RewardOutput:
        score = float(success) - self.invalid_action_penalty * invalid
        info = {"success": success, "invalid_actions": invalid, "turns": turns, "source": source}
        return RewardOutput(score=score, info=info)
