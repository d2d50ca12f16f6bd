"""A deterministic key-and-door grid world with a short horizon.

The layout (walls, agent, key, door) is generated from ``row["seed"]`` alone, so every
rollout of a prompt starts in the same world and the same actions revisit the same
states; this is what lets SALT and GiGPO find shared steps across a group.

Rules: the agent moves up/down/left/right; moving off the grid or into a wall leaves it
where it is. Stepping on the key picks it up. Stepping on the door with the key opens it
and ends the episode with reward 1 (success); without the key the door is locked and the
agent stays put. Every layout is checked solvable (start -> key -> door, by breadth-first
search) before it is used.

Row fields: ``seed`` (int, required), ``size`` (grid side, default 5), ``wall_density``
(fraction of cells that are walls, default 0.2), ``key`` (bool, default True: without a
key the door is an open goal).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from rewardkit_agents.envs.base import TextEnv, describe_local, require

Cell = tuple[int, int]
MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def _reachable(size: int, walls: set[Cell], start: Cell, goal: Cell, blocked: set[Cell]) -> bool:
    """Breadth-first search from start to goal through free cells not in `blocked`."""
    seen, queue = {start}, deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return True
        for dr, dc in MOVES.values():
            nxt = (r + dr, c + dc)
            if (
                0 <= nxt[0] < size
                and 0 <= nxt[1] < size
                and nxt not in walls
                and nxt not in seen
                and (nxt not in blocked or nxt == goal)
            ):
                seen.add(nxt)
                queue.append(nxt)
    return False


def make_layout(
    seed: int, size: int = 5, wall_density: float = 0.2, with_key: bool = True
) -> dict[str, Any]:
    """A solvable layout {walls, agent, key, door} drawn from `seed` (deterministic)."""
    if not isinstance(size, int) or not 3 <= size <= 12:
        raise ValueError(f"gridworld: size must be an integer in [3, 12], got {size!r}")
    if not 0.0 <= wall_density <= 0.5:
        raise ValueError(f"gridworld: wall_density must be in [0, 0.5], got {wall_density}")
    rng = random.Random(seed)
    cells = [(r, c) for r in range(size) for c in range(size)]
    for _ in range(1000):
        agent, key, door = rng.sample(cells, 3)
        free = [x for x in cells if x not in (agent, key, door)]
        walls = set(rng.sample(free, round(wall_density * len(free))))
        if with_key:
            ok = _reachable(size, walls, agent, key, {door}) and _reachable(
                size, walls, key, door, set()
            )
        else:
            ok = _reachable(size, walls, agent, door, set())
        if ok:
            return {"walls": walls, "agent": agent, "key": key if with_key else None, "door": door}
    raise RuntimeError(f"gridworld: no solvable layout for seed {seed} in 1000 tries")


class GridWorldEnv(TextEnv):
    """Key-and-door navigation; state = (row, col, has_key)."""

    name = "gridworld"
    actions = ("up", "down", "left", "right")
    aliases = {"north": "up", "south": "down", "west": "left", "east": "right"}
    observations = ("grid", "local")

    def __init__(self, max_turns: int = 15, **kwargs: Any):
        super().__init__(max_turns=max_turns, **kwargs)
        self.size = 0
        self.walls: set[Cell] = set()
        self.agent: Cell = (0, 0)
        self.key: Cell | None = None
        self.door: Cell = (0, 0)
        self.has_key = False

    def _reset(self, row: dict[str, Any], seed: int | None) -> str:
        # `seed` is unused: the world is deterministic and its layout comes from the row.
        layout = make_layout(
            require(row, "seed", int, self.name),
            size=row.get("size", 5),
            wall_density=row.get("wall_density", 0.2),
            with_key=row.get("key", True),
        )
        self.size = row.get("size", 5)
        self.walls, self.agent = layout["walls"], layout["agent"]
        self.key, self.door = layout["key"], layout["door"]
        self.has_key = self.key is None
        return self.view()

    def _apply(self, action: str) -> tuple[str, float, bool]:
        dr, dc = MOVES[action]
        target = (self.agent[0] + dr, self.agent[1] + dc)
        if not (0 <= target[0] < self.size and 0 <= target[1] < self.size):
            return f"You hit the edge of the grid.\n\n{self.view()}", 0.0, False
        if target in self.walls:
            return f"You walked into a wall.\n\n{self.view()}", 0.0, False
        if target == self.door:
            if not self.has_key:
                return f"The door is locked. Find the key first.\n\n{self.view()}", 0.0, False
            self.agent = target
            self.success = True
            return f"You opened the door. Success!\n\n{self.view()}", 1.0, True
        self.agent = target
        if target == self.key and not self.has_key:
            self.has_key = True
            return f"You picked up the key.\n\n{self.view()}", 0.0, False
        return f"You moved {action}.\n\n{self.view()}", 0.0, False

    def state(self) -> tuple[int, int, bool]:
        if not self._started:
            raise RuntimeError(f"{self.name}: call reset() before state()")
        return (self.agent[0], self.agent[1], self.has_key)

    def render(self) -> str:
        lines = []
        for r in range(self.size):
            row = []
            for c in range(self.size):
                cell = (r, c)
                if cell == self.agent:
                    row.append("A")
                elif cell == self.door:
                    row.append("D")
                elif cell == self.key and not self.has_key:
                    row.append("K")
                elif cell in self.walls:
                    row.append("#")
                else:
                    row.append(".")
            lines.append(" ".join(row))
        if self.key is None:
            return "\n".join(lines)
        carrying = "You carry the key." if self.has_key else "You do not have the key."
        return "\n".join(lines) + "\n" + carrying

    def local_view(self) -> str:
        """Offset of the key (until it is picked up) or the door, and the four neighbours:
        edge, wall, key, door or open."""
        around = {}
        for move, (dr, dc) in MOVES.items():
            cell = (self.agent[0] + dr, self.agent[1] + dc)
            if not (0 <= cell[0] < self.size and 0 <= cell[1] < self.size):
                around[move] = "edge"
            elif cell in self.walls:
                around[move] = "wall"
            elif cell == self.door:
                around[move] = "door"
            elif cell == self.key and not self.has_key:
                around[move] = "key"
            else:
                around[move] = "open"
        if self.has_key:
            return describe_local("door", self.agent, self.door, around)
        return describe_local("key", self.agent, self.key, around)

    def instructions(self) -> str:
        return (
            "You are A in a grid world. '#' is a wall, '.' is floor. Reach the door D. "
            "If there is a key K, pick it up first (walk onto it): the door opens only with "
            "the key. Moves: up, down, left, right. " + super().instructions()
        )
