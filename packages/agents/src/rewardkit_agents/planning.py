"""Expert plans for the built-in environments: breadth-first search over copies.

Used to warm-start policies on demonstrations and to check that layouts are solvable.
"""

from __future__ import annotations

import copy
from collections import deque


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
