"""SALT: step-level advantages from a trajectory graph of each prompt group.

Paper: "SALT: Step-level Advantage Assignment for Long-horizon Agents via Trajectory
Graph" (arXiv 2510.20022). With outcome rewards R_i of the N trajectories of one prompt:

1. trajectory advantages A_traj(i) by the group estimator (GRPO z-score or RLOO), with
   core's conventions (Bessel-corrected std, eps = 1e-4 as TRL), so A_traj is exactly
   what core's `grpo` / `rloo` estimators give;
2. the trajectory graph: step t of trajectory i is the edge
   key(i, t) = (canon(s_t), canon(a_t), canon(s_{t+1})); equal keys across the group's
   trajectories (and within one trajectory) merge into one edge;
3. A_SALT(i, t) = mean of A_traj(j) over all occurrences (j, u) of the edge key(i, t),
   and it replaces A_traj on every token of step t.

Consequences (tested): an edge seen once keeps A_traj; an edge shared by successful and
failed trajectories moves toward 0; summed over all step occurrences of a group, the
SALT advantages equal the plain group advantages (each edge redistributes its own sum).

The paper's exact merging rule is not public, so the key is configurable: "transition"
(s, a, s'), "state_action" (s, a), "state" (s), or a callable (s, a, s') -> hashable.
State identity is `trajectories.default_state` unless `state_fn` is given. Action
identity is canon() of the committed action (`trajectories.committed_action`: the last
<action> tag or `Action:` line when present, else the whole text); action_fn="text"
uses canon() of the whole action text, or pass a callable.
Policy tokens outside every turn (e.g. after the last action) keep A_traj.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.advantages.base import GRPO_EPS
from rewardkit.types import RolloutBatch
from rewardkit_agents.trajectories import (
    batch_turns,
    canon,
    committed_action,
    default_state,
    group_advantages,
    resolve_callable,
    spread_steps,
)

KEYS: dict[str, Callable[[Hashable, Hashable, Hashable], Hashable]] = {
    "transition": lambda s, a, s_next: (s, a, s_next),
    "state_action": lambda s, a, s_next: (s, a),
    "state": lambda s, a, s_next: s,
}


@dataclass(frozen=True)
class Step:
    """One step occurrence: sample i's step t, its graph key and both advantages."""

    sample: int
    group: int
    t: int
    state: Hashable
    action: Hashable
    next_state: Hashable
    key: Hashable
    traj_advantage: float
    advantage: float


class SALT:
    """Advantage estimator `agents.salt` (options: key, estimator, eps, state_fn, action_fn)."""

    requires = frozenset({"turns"})

    def __init__(
        self,
        key: str | Callable[..., Hashable] = "transition",
        estimator: str = "grpo",
        eps: float = GRPO_EPS,
        state_fn: str | Callable[..., Hashable] | None = None,
        action_fn: str | Callable[[str], Hashable] = "committed",
    ):
        if isinstance(key, str) and key in KEYS:
            self.key_fn = KEYS[key]
        elif isinstance(key, str) and ":" not in key:
            raise ValueError(f"unknown SALT key {key!r}; use one of {sorted(KEYS)} or a callable")
        else:
            self.key_fn = resolve_callable(key, "SALT key")
        if estimator not in ("grpo", "grpo_no_std", "rloo"):
            raise ValueError(
                f"unknown estimator {estimator!r}; use 'grpo', 'grpo_no_std' or 'rloo'"
            )
        self.key = key
        self.estimator = estimator
        self.eps = eps
        self.state_fn = (
            default_state if state_fn is None else resolve_callable(state_fn, "state_fn")
        )
        if action_fn == "committed":
            self.action_fn = committed_action
        elif action_fn == "text":
            self.action_fn = canon
        elif isinstance(action_fn, str) and ":" not in action_fn:
            raise ValueError(
                f"action_fn must be 'committed', 'text', a callable or 'module:function', "
                f"got {action_fn!r}"
            )
        else:
            self.action_fn = resolve_callable(action_fn, "action_fn")

    def steps(self, batch: RolloutBatch) -> list[Step]:
        """Every step occurrence of the batch with its SALT advantage (step 3 above)."""
        return self._compute(batch)[2]

    def _compute(self, batch: RolloutBatch) -> tuple[list, torch.Tensor, list[Step]]:
        turns = batch_turns(batch, "agents.salt")
        traj = group_advantages(batch.scores, batch.groups, self.estimator, self.eps)
        traj_list, groups = traj.tolist(), batch.groups.tolist()
        raw: list[tuple[int, int, Hashable, Hashable, Hashable, Hashable]] = []
        totals: dict[tuple[int, Hashable], list[float]] = defaultdict(lambda: [0.0, 0])
        for i, sample_turns in enumerate(turns):
            states = [self.state_fn(sample_turns, t) for t in range(len(sample_turns) + 1)]
            for t, turn in enumerate(sample_turns):
                s, s_next = states[t], states[t + 1]
                a = self.action_fn(turn.action)
                k = self.key_fn(s, a, s_next)
                raw.append((i, t, s, a, s_next, k))
                total = totals[(groups[i], k)]  # edges merge within a prompt group only
                total[0] += traj_list[i]
                total[1] += 1
        steps = []
        for i, t, s, a, s_next, k in raw:
            edge_sum, edge_count = totals[(groups[i], k)]
            steps.append(
                Step(i, groups[i], t, s, a, s_next, k, traj_list[i], edge_sum / edge_count)
            )
        return turns, traj, steps

    def __call__(self, batch: RolloutBatch) -> torch.Tensor:
        turns, traj, steps = self._compute(batch)
        values: list[list[float]] = [[0.0] * len(x) for x in turns]
        for step in steps:
            values[step.sample][step.t] = step.advantage
        return spread_steps(batch, turns, values, traj)

    def graph(self, batch: RolloutBatch, group: int | None = None) -> Any:
        """The trajectory graph of one prompt group (the only one when `group` is None)."""
        from rewardkit_agents.graph import trajectory_graph

        steps = self.steps(batch)
        present = sorted({s.group for s in steps})
        if group is None:
            if len(present) != 1:
                raise ValueError(f"the batch has groups {present}; pass group=<one of them>")
            group = present[0]
        if group not in present:
            raise ValueError(f"group {group} has no steps in this batch (groups: {present})")
        return trajectory_graph([s for s in steps if s.group == group])
