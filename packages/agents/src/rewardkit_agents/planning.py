"""Expert plans for the built-in environments: breadth-first search over copies.

Used to warm-start policies on demonstrations and to check that layouts are solvable:
`shortest_plan` (the BFS expert) and `FlawedExpert` (shortest paths with wrong turns at
junctions, for a warm start that leaves room for RL).
"""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Hashable


def shortest_plan(env) -> list[str] | None:
    """Shortest action list from the reset `env` to success (BFS over deep copies of it);
    None when no plan succeeds within the environment's turn limit. `env` is not changed."""
    queue, seen = deque([(env, [])]), {env.state()}
    while queue:
        current, plan = queue.popleft()
        for action in current.actions:
            nxt = copy.deepcopy(current)
            result = nxt.step(action)
            if result.info["success"]:
                return plan + [action]
            if not result.done and nxt.state() not in seen:
                seen.add(nxt.state())
                queue.append((nxt, plan + [action]))
    return None


INFINITY = float("inf")
Transitions = dict[Hashable, dict[str, tuple[Hashable, bool, bool]]]


def state_graph(env) -> Transitions:
    """Every state reachable from the reset `env` (breadth-first over deep copies, the turn
    limit lifted): {state: {action: (next state, success, episode over)}}. Deterministic
    environments only (one next state per action). `env` is not changed."""
    start = copy.deepcopy(env)
    start.max_turns = 10**9  # distances, not what fits in the episode's remaining turns
    graph: Transitions = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        here = current.state()
        if here in graph:
            continue
        graph[here] = {}
        for action in current.actions:
            nxt = copy.deepcopy(current)
            result = nxt.step(action)
            graph[here][action] = (nxt.state(), result.info["success"], result.done)
            if not result.done and nxt.state() not in graph:
                queue.append(nxt)
    return graph


def goal_distances(graph: Transitions) -> dict[Hashable, int]:
    """Fewest actions from each state of `graph` to success (states that cannot reach it
    are left out): value iteration of d(s) = 1 + min over actions of d(next), 0 past success."""
    distance: dict[Hashable, int] = {}
    changed = True
    while changed:
        changed = False
        for state, moves in graph.items():
            for nxt, success, over in moves.values():
                d = 1 if success else INFINITY if over else 1 + distance.get(nxt, INFINITY)
                if d < distance.get(state, INFINITY):
                    distance[state] = int(d)
                    changed = True
    return distance


class FlawedExpert:
    """A shortest-path expert that takes wrong turns at junctions.

    At each state the expert knows, for every action, how many actions remain to success
    after it (`state_graph`, `goal_distances`). The optimal actions are those with the
    fewest; a *wrong turn* is an action that moves the agent (its state changes) without
    ending the episode and leaves it farther from success than an optimal one. At a
    junction (a state with at least one wrong turn) the expert takes a wrong turn, drawn
    uniformly, with probability `p_wrong`; otherwise it takes an optimal action, drawn
    uniformly among ties. `p_wrong=0` is the BFS expert. It never steps into a hole or a
    dead end on purpose (those are not wrong turns, they end the episode or go nowhere).
    """

    def __init__(self, env, p_wrong: float, rng: random.Random):
        if not 0.0 <= p_wrong <= 1.0:
            raise ValueError(f"p_wrong must be a probability in [0, 1], got {p_wrong}")
        self.p_wrong, self.rng = p_wrong, rng
        self.graph = state_graph(env)
        self.distance = goal_distances(self.graph)

    def to_go(self, state: Hashable, action: str) -> float:
        """Actions left to success after taking `action` in `state` (inf: never)."""
        nxt, success, over = self.graph[state][action]
        if success:
            return 0
        return INFINITY if over else self.distance.get(nxt, INFINITY)

    def choices(self, state: Hashable) -> tuple[list[str], list[str]]:
        """(optimal actions, wrong turns) in `state`."""
        to_go = {a: self.to_go(state, a) for a in self.graph[state]}
        best = min(to_go.values())
        optimal = [a for a, d in to_go.items() if d == best]
        wrong = [
            a for a, d in to_go.items() if best < d < INFINITY and self.graph[state][a][0] != state
        ]
        return optimal, wrong

    def act(self, state: Hashable) -> tuple[str, bool]:
        """(action, whether it is a wrong turn) for `state`."""
        optimal, wrong = self.choices(state)
        if wrong and self.rng.random() < self.p_wrong:
            return self.rng.choice(wrong), True
        return self.rng.choice(optimal), False
