"""`recsys.movielens`: next-item prediction on MovieLens-100K with semantic IDs (GREAM).

Rows (Sample.meta): prompt, user, history (item ids), target (item id), target_id (its
ID string), mode ("direct" or "reasoning"). Splits: "train" (every earlier position of
each user), "valid" (second to last item), "test" (last item); histories ≤ max_history.

The ID map comes from `id_map` (a JSON path: loaded and checked against the catalogue
when it exists, built and written there otherwise) or is built in memory. Building embeds
the item texts with all-MiniLM-L6-v2 (optionally concatenated with collaborative SVD
factors of the training interactions) and runs balanced residual k-means.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Literal

from rewardkit.tasks.base import RewardSpec, Task
from rewardkit_recsys.embeddings import collaborative_embeddings, combine, text_embeddings
from rewardkit_recsys.movielens import Example, Item, Split, load_ml100k
from rewardkit_recsys.prompts import (
    id2title_pair,
    item2id_pair,
    reasoning_pair,
    reasoning_prompt,
    seqrec_pair,
    seqrec_prompt,
)
from rewardkit_recsys.semantic_ids import SemanticIDs, build_semantic_ids


def build_item_ids(
    items: dict[str, Item],
    split: Split,
    levels: int,
    codes_per_level: int,
    embedding: str = "text",
    seed: int = 42,
) -> SemanticIDs:
    """Semantic IDs for the catalogue: text (or text+collab) embeddings, residual k-means.

    The collaborative part uses training interactions only (no validation/test leakage).
    """
    if embedding not in ("text", "text+collab"):
        raise ValueError(
            f"recsys.movielens: embedding must be 'text' or 'text+collab', got {embedding!r}"
        )
    catalogue = sorted(items, key=int)
    parts = [text_embeddings([items[i].text() for i in catalogue])]
    if embedding == "text+collab":
        # every training interaction: each target, plus each user's first item
        pairs = sorted({(ex.user, i) for ex in split.train for i in (ex.history[0], ex.target)})
        parts.append(collaborative_embeddings(pairs, catalogue))
    return build_semantic_ids(combine(parts), catalogue, levels, codes_per_level, seed)


class MovieLens(Task):
    """Options: mode (direct | reasoning), max_history (20), levels (3), codes_per_level
    (16: small catalogue), embedding (text | text+collab), id_map (JSON path or None),
    max_train_rows (None = all, else a seeded sample), seed (42)."""

    name = "recsys.movielens"
    rewards = [RewardSpec("recsys.id_match", 1.0)]
    default_config = {
        "advantage": "recsys.bgae",
        "beta": 0.001,
        "dynamic_sampling": True,
        "num_generations": 8,
        "max_completion_length": 8,
        "stop_strings": [],
    }

    def __init__(
        self,
        mode: Literal["direct", "reasoning"] = "direct",
        max_history: int = 20,
        levels: int = 3,
        codes_per_level: int = 16,
        embedding: str = "text",
        id_map: str | None = None,
        max_train_rows: int | None = None,
        seed: int = 42,
    ):
        if mode not in ("direct", "reasoning"):
            raise ValueError(f"recsys.movielens: mode must be direct or reasoning, got {mode!r}")
        super().__init__(
            mode=mode,
            max_history=max_history,
            levels=levels,
            codes_per_level=codes_per_level,
            embedding=embedding,
            id_map=id_map,
            max_train_rows=max_train_rows,
            seed=seed,
        )
        self.mode = mode
        self.items, self.split = load_ml100k(max_history)
        if id_map is not None and Path(id_map).exists():
            self.ids = SemanticIDs.from_json(id_map)
            self.ids.validate(catalogue=list(self.items))
        else:
            self.ids = build_item_ids(
                self.items, self.split, levels, codes_per_level, embedding, seed
            )
            if id_map is not None:
                self.ids.to_json(id_map)
        train = self.split.train
        if max_train_rows is not None:
            if max_train_rows < 1:
                raise ValueError(
                    f"recsys.movielens: max_train_rows must be >= 1, got {max_train_rows}"
                )
            train = random.Random(seed).sample(train, min(max_train_rows, len(train)))
        self._examples = {"train": train, "valid": self.split.valid, "test": self.split.test}
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def row(self, ex: Example) -> dict[str, Any]:
        make = reasoning_prompt if self.mode == "reasoning" else seqrec_prompt
        return {
            "prompt": make(self.ids, ex.history),
            "user": ex.user,
            "history": list(ex.history),
            "target": ex.target,
            "target_id": self.ids.item_to_id[ex.target],
            "mode": self.mode,
        }

    def rows(self, split: str) -> list[dict[str, Any]]:
        if split not in self._examples:
            raise ValueError(f"recsys.movielens has splits train, valid and test, not {split!r}")
        if split not in self._rows:
            self._rows[split] = [self.row(ex) for ex in self._examples[split]]
        return self._rows[split]

    def supervised_pairs(self, reasoning: bool = True) -> tuple[list[dict], list[dict]]:
        """(alignment, reasoning) supervised pairs over the training split: seqrec for every
        training example, item2id and id2title for every item; reasoning pairs per example."""
        train = self._examples["train"]
        alignment = [seqrec_pair(self.ids, ex) for ex in train]
        for item in self.items.values():
            alignment += [item2id_pair(self.ids, item), id2title_pair(self.ids, item)]
        reasons = [reasoning_pair(self.ids, self.items, ex) for ex in train] if reasoning else []
        return alignment, reasons
