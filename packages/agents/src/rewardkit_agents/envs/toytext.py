"""Gymnasium's toy-text environments (FrozenLake, Taxi, CliffWalking) as text environments.

The gymnasium classes are used unwrapped (no TimeLimit: the turn limit is `TextEnv`'s)
and rendered to plain text here, without the ANSI colour codes of gymnasium's "ansi"
mode, so that equal states render to equal text. All three are deterministic by default
(not slippery, not rainy); the stochastic variants are seeded by the `seed` passed to
`reset`, or by ``row["seed"]`` when none is passed, so rollouts stay reproducible.

Rewards are gymnasium's: FrozenLake 1 at the goal; Taxi -1 a step, +20 for a correct
drop-off, -10 for an illegal pick-up or drop-off; CliffWalking -1 a step and -100 (back to
the start) for stepping off the cliff. ``info["success"]`` says the goal was reached.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.toy_text.cliffwalking import CliffWalkingEnv as _GymCliff
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv as _GymFrozenLake
from gymnasium.envs.toy_text.frozen_lake import generate_random_map
from gymnasium.envs.toy_text.taxi import MAP as TAXI_MAP
from gymnasium.envs.toy_text.taxi import TaxiEnv as _GymTaxi

from rewardkit_agents.envs.base import TextEnv, describe_local, require


def _seed(row: dict[str, Any], seed: int | None) -> int | None:
    return seed if seed is not None else row.get("seed")


def _started(text_env: TextEnv) -> Any:
    """The wrapped gymnasium environment, or a clear error before the first reset()."""
    if text_env.env is None:
        raise RuntimeError(f"{text_env.name}: call reset() before state()")
    return text_env.env


def check_lake_map(lake: Any) -> list[str]:
    """A FrozenLake map: equal-length rows of S/F/H/G, exactly one S, at least one G."""
    if not isinstance(lake, list | tuple) or not lake or not all(isinstance(r, str) for r in lake):
        raise TypeError(f"frozenlake: row['map'] must be a list of strings, got {lake!r}")
    if len({len(r) for r in lake}) != 1:
        raise ValueError(f"frozenlake: map rows have different lengths: {list(lake)}")
    bad = {ch for r in lake for ch in r} - set("SFHG")
    if bad:
        raise ValueError(f"frozenlake: map has characters {sorted(bad)}; only S, F, H, G allowed")
    text = "".join(lake)
    if text.count("S") != 1 or "G" not in text:
        raise ValueError(f"frozenlake: map needs exactly one S and at least one G: {list(lake)}")
    return list(lake)


class FrozenLakeEnv(TextEnv):
    """Cross the frozen lake from S to G without falling into a hole H; state = (row, col).

    Row fields: ``map`` (list of strings) or ``seed`` (a random solvable map of side
    ``size``, default 4, with frozen-tile probability ``p``, default 0.8).
    """

    name = "frozenlake"
    actions = ("left", "down", "right", "up")  # gymnasium's action indices 0..3
    aliases = {"west": "left", "south": "down", "east": "right", "north": "up"}
    observations = ("grid", "local")
    moves = {"left": (0, -1), "down": (1, 0), "right": (0, 1), "up": (-1, 0)}

    def __init__(self, max_turns: int = 20, is_slippery: bool = False, **kwargs: Any):
        super().__init__(max_turns=max_turns, **kwargs)
        self.is_slippery = is_slippery
        self.env: _GymFrozenLake | None = None
        self.lake: list[str] = []

    def _reset(self, row: dict[str, Any], seed: int | None) -> str:
        if "map" in row:
            self.lake = check_lake_map(row["map"])
        else:
            size = row.get("size", 4)
            if not isinstance(size, int) or not 2 <= size <= 12:
                raise ValueError(f"frozenlake: size must be an integer in [2, 12], got {size!r}")
            self.lake = generate_random_map(
                size=size, p=row.get("p", 0.8), seed=require(row, "seed", int, self.name)
            )
        self.env = _GymFrozenLake(desc=self.lake, is_slippery=self.is_slippery)
        self.env.reset(seed=_seed(row, seed))
        return self.view()

    def _apply(self, action: str) -> tuple[str, float, bool]:
        _, reward, terminated, _, _ = self.env.step(self.actions.index(action))
        r, c = self.state()
        tile = self.lake[r][c]
        if tile == "G":
            self.success = True
            return f"You reached the goal. Success!\n\n{self.view()}", float(reward), True
        if tile == "H":
            return f"You fell into a hole. Episode over.\n\n{self.view()}", float(reward), True
        return f"You moved {action}.\n\n{self.view()}", float(reward), bool(terminated)

    def state(self) -> tuple[int, int]:
        s = int(_started(self).s)
        return (s // len(self.lake[0]), s % len(self.lake[0]))

    def render(self) -> str:
        r, c = self.state()
        rows = [list(line) for line in self.lake]
        rows[r][c] = "A"
        return "\n".join(" ".join(line) for line in rows)

    def local_view(self) -> str:
        """Offset of the (first) goal G and the four neighbours: edge, hole, goal or ice."""
        r, c = self.state()
        kinds = {"H": "hole", "G": "goal", "F": "ice", "S": "ice"}
        around = {}
        for move, (dr, dc) in self.moves.items():
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < len(self.lake) and 0 <= nc < len(self.lake[0])
            around[move] = kinds[self.lake[nr][nc]] if inside else "edge"
        goal = next((i, row.index("G")) for i, row in enumerate(self.lake) if "G" in row)
        return describe_local("goal", (r, c), goal, around)

    def instructions(self) -> str:
        return (
            "You are A on a frozen lake. S is the start, F is frozen ice (safe), H is a hole "
            "(falling in ends the episode), G is the goal. Reach G. " + super().instructions()
        )


class TaxiEnv(TextEnv):
    """Pick a passenger up at one of R, G, Y, B and drop them at their destination.

    State = (taxi_row, taxi_col, passenger, destination) with passenger 0..3 = waiting at
    R/G/Y/B and 4 = in the taxi. Row fields: ``seed`` (int, picks the starting state).
    """

    name = "taxi"
    actions = ("south", "north", "east", "west", "pickup", "dropoff")  # gymnasium 0..5
    aliases = {
        "down": "south",
        "up": "north",
        "right": "east",
        "left": "west",
        "pick up": "pickup",
        "drop off": "dropoff",
    }
    LOCATIONS = "RGYB"

    def __init__(self, max_turns: int = 25, is_rainy: bool = False, **kwargs: Any):
        super().__init__(max_turns=max_turns, **kwargs)
        self.is_rainy = is_rainy
        self.env: _GymTaxi | None = None

    def _reset(self, row: dict[str, Any], seed: int | None) -> str:
        start_seed = require(row, "seed", int, self.name)
        self.env = _GymTaxi(is_rainy=self.is_rainy)
        self.env.reset(seed=start_seed)  # the starting state comes from the row alone
        if seed is not None:  # ... the rain (if any) from the rollout's seed
            state = self.env.s
            self.env.reset(seed=seed)
            self.env.s = state
        return self.render()

    def _apply(self, action: str) -> tuple[str, float, bool]:
        before = self.state()
        _, reward, terminated, _, _ = self.env.step(self.actions.index(action))
        if terminated:
            self.success = True
            return f"Passenger delivered. Success!\n\n{self.render()}", float(reward), True
        if reward == -10:
            message = f"Illegal {action}."
        elif action == "pickup":
            message = "Passenger picked up."
        elif self.state() == before:
            message = "You cannot move there."
        else:
            message = f"You drove {action}."
        return f"{message}\n\n{self.render()}", float(reward), False

    def state(self) -> tuple[int, int, int, int]:
        env = _started(self)
        return tuple(int(x) for x in env.decode(env.s))

    def render(self) -> str:
        taxi_row, taxi_col, passenger, destination = self.state()
        rows = [list(line) for line in TAXI_MAP]
        rows[1 + taxi_row][2 * taxi_col + 1] = "T"
        where = "in the taxi" if passenger == 4 else f"waiting at {self.LOCATIONS[passenger]}"
        return (
            "\n".join("".join(line) for line in rows)
            + f"\nTaxi T at row {taxi_row}, column {taxi_col}. Passenger {where}. "
            + f"Destination {self.LOCATIONS[destination]}."
        )

    def instructions(self) -> str:
        return (
            "You drive the taxi T on a 5x5 map; '|' are walls. Pick the passenger up (pickup "
            "at their letter), drive to the destination letter and drop them off (dropoff). "
            "Each step costs 1, an illegal pickup/dropoff costs 10, delivery earns 20. "
            + super().instructions()
        )


class CliffWalkingEnv(TextEnv):
    """Walk from S (bottom left) to G (bottom right) along a cliff; state = (row, col).

    Row fields: ``seed`` (optional; only the slippery variant uses randomness).
    """

    name = "cliffwalking"
    actions = ("up", "right", "down", "left")  # gymnasium 0..3
    aliases = {"north": "up", "east": "right", "south": "down", "west": "left"}

    def __init__(self, max_turns: int = 30, is_slippery: bool = False, **kwargs: Any):
        super().__init__(max_turns=max_turns, **kwargs)
        self.is_slippery = is_slippery
        self.env: _GymCliff | None = None

    def _reset(self, row: dict[str, Any], seed: int | None) -> str:
        self.env = _GymCliff(is_slippery=self.is_slippery)
        self.env.reset(seed=_seed(row, seed))
        return self.view()

    def _apply(self, action: str) -> tuple[str, float, bool]:
        _, reward, terminated, _, _ = self.env.step(self.actions.index(action))
        if terminated:
            self.success = True
            return f"You reached the goal. Success!\n\n{self.render()}", float(reward), True
        if reward == -100:
            message = "You fell off the cliff and are back at the start."
        else:
            message = f"You moved {action}."
        return f"{message}\n\n{self.render()}", float(reward), False

    def state(self) -> tuple[int, int]:
        s = int(_started(self).s)
        return (s // 12, s % 12)

    def render(self) -> str:
        r, c = self.state()
        rows = [["."] * 12 for _ in range(4)]
        rows[3] = ["S"] + ["C"] * 10 + ["G"]
        rows[r][c] = "A"
        return "\n".join(" ".join(line) for line in rows)

    def instructions(self) -> str:
        return (
            "You are A on a 4x12 grid. Walk from S to G; C is the cliff (stepping on it costs "
            "100 and sends you back to S); every step costs 1. " + super().instructions()
        )
