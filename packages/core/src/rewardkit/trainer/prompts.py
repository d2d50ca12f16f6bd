"""A resumable, seeded stream of dataset row indices, sharded across processes."""

from __future__ import annotations

import random


class PromptStream:
    """Epochs of seeded permutations; process r of P takes positions r, r+P, ... of each
    global batch. The state (epoch, position) goes into checkpoints, so a resumed run
    sees exactly the prompts the uninterrupted run would have seen."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        if size < 1:
            raise ValueError("the task's train split is empty")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.position = 0, 0

    def _order(self, epoch: int) -> list[int]:
        order = list(range(self.size))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def take(self, n: int) -> list[int]:
        """This process's n indices of the next global batch of n × world."""
        out = []
        order = self._order(self.epoch)
        for k in range(n * self.world):
            if self.position >= self.size:
                self.epoch, self.position = self.epoch + 1, 0
                order = self._order(self.epoch)
            if k % self.world == self.rank:
                out.append(order[self.position])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
