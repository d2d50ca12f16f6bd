"""`recsys.movielens`: next-item prediction on MovieLens-100K with semantic IDs (GREAM).

Rows (Sample.meta): prompt, user, history (item ids), target (item id), target_id (its
ID string), mode ("direct" or "reasoning"). Splits: "train" (every earlier position of
each user), "valid" (second to last item), "test" (last item); histories ≤ max_history.

The ID map comes from `id_map` (a JSON path: loaded and checked against the catalogue
when it exists, built and written there otherwise) or is built in memory. Building embeds
the item texts with all-MiniLM-L6-v2 (optionally concatenated with collaborative SVD
factors of the training interactions) and runs balanced residual k-means.

The stages around SRPO run through the core task hooks (settings: the `StageOptions` of
`stages.py`, given as further task options): `prepare_policy` adds the ID tokens and runs
the supervised alignment; `evaluate_policy` evaluates both inference modes on the test
users. The first evaluation of a fresh run is "after_alignment", the next "after_srpo";
both go to `<output_dir>/results.json` with the seconds of each stage, and the second
also prints the before/after table.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from itertools import groupby
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
from rewardkit_recsys.stages import StageOptions, evaluate, format_table, prepare


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
    max_train_rows (None = all, else a seeded sample), seed (42), and the stage options
    of `StageOptions` (alignment and evaluation)."""

    name = "recsys.movielens"
    rewards = [RewardSpec("recsys.id_match", 1.0)]
    default_config = {
        "advantage": "recsys.bgae",
        "beta": 0.001,
        "group_filter": "zero_variance",
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
        **stage_options: Any,
    ):
        started = time.perf_counter()
        self.stages = StageOptions.from_options(stage_options)
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
            **stage_options,
        )
        self.mode, self.seed = mode, seed
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
            keep = random.Random(seed).sample(range(len(train)), min(max_train_rows, len(train)))
            train = [train[i] for i in sorted(keep)]  # each user's positions stay in order
        self._examples = {"train": train, "valid": self.split.valid, "test": self.split.test}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self.seconds = {"ids": time.perf_counter() - started}
        self.results: dict[str, Any] = {}  # of this run's evaluations; see evaluate_policy
        self._output_dir: Path | None = None
        self._aligned: float | None = None  # weight fingerprint of the aligned policy

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

    def supervised_pairs(
        self,
        reasoning: bool = True,
        stride: int = 1,
        rng: random.Random | None = None,
        item_tasks: bool = True,
    ) -> tuple[list[dict], list[dict]]:
        """(alignment, reasoning) supervised pairs: seqrec for every `stride`-th training
        position of each user (counted back from the last, from a random offset with `rng`),
        item2id and id2title for every item (with `item_tasks`); a reasoning pair per
        seqrec pair."""
        if stride < 1:
            raise ValueError(f"recsys.movielens: stride must be >= 1, got {stride}")
        chosen = []
        for _, group in groupby(self._examples["train"], key=lambda ex: ex.user):
            examples = list(group)
            last = len(examples) - 1 - (rng.randrange(stride) if rng is not None else 0)
            chosen += examples[last::-stride][::-1] if last >= 0 else []
        alignment = [seqrec_pair(self.ids, ex) for ex in chosen]
        for item in self.items.values() if item_tasks else ():
            alignment += [item2id_pair(self.ids, item), id2title_pair(self.ids, item)]
        reasons = [reasoning_pair(self.ids, self.items, ex) for ex in chosen] if reasoning else []
        return alignment, reasons

    # -- the core task hooks -------------------------------------------------------------
    def prepare_policy(self, model, tokenizer, config):
        """ID tokens, embedding resize, supervised alignment (or its cached result)."""
        if config.progress:
            print(f"[recsys] supervised alignment: {self.stages.sft_epochs} epoch(s)", flush=True)
        start = time.perf_counter()
        model, tokenizer, info = prepare(self, model, tokenizer, config, self.stages)
        self.seconds["alignment"] = time.perf_counter() - start
        self.alignment = {k: v for k, v in info.items() if k != "key"}
        if config.progress:
            how = f"loaded from {self.stages.aligned_model}" if info["cached"] else "trained"
            print(f"[recsys] aligned policy {how} ({self.seconds['alignment']:.0f} s)", flush=True)
        self._output_dir = Path(config.output_dir)
        self._aligned = _fingerprint(model)
        self.results = {}
        return model, tokenizer

    def evaluate_policy(self, model, tokenizer) -> dict[str, float]:
        """Both inference modes on the test users; recorded as "after_alignment" while the
        policy is still the aligned one, else "after_srpo"."""
        aligned = not self.results and _fingerprint(model) == self._aligned
        stage = "after_alignment" if aligned else "after_srpo"
        start = time.perf_counter()
        if "after_alignment" in self.results:
            self.seconds["srpo"] = start - self._evaluated_at
        metrics = evaluate(model, tokenizer, self, self.stages)
        for mode in ("direct", "reasoning"):
            if f"{mode}/seconds" in metrics:
                self.seconds[f"{stage}/{mode}"] = metrics.pop(f"{mode}/seconds")
        self._evaluated_at = time.perf_counter()
        self.seconds[f"eval_{stage}"] = self._evaluated_at - start
        self.results[stage] = metrics
        if self._output_dir is not None:
            self.write_results(self._output_dir / "results.json")
        if stage == "after_srpo":
            print(format_table(self.results), flush=True)
        return metrics

    def write_results(self, path: Path) -> None:
        n = len(self.rows("test"))
        users = min(self.stages.eval_users or n, n)
        reasoning = self.stages.reasoning_eval_users
        out = {
            **self.results,
            "seconds": self.seconds,
            "eval_users": users,
            "reasoning_eval_users": users if reasoning is None else min(reasoning, n),
            "alignment": getattr(self, "alignment", None),
            "id_map": {
                "levels": self.ids.levels,
                "codes_per_level": self.ids.codes_per_level,
                "suffix_size": self.ids.suffix_size,
                "items": len(self.ids.item_to_id),
            },
            "options": {
                k: v for k, v in self.options.items() if k not in dataclasses.asdict(self.stages)
            }
            | {"stages": dataclasses.asdict(self.stages)},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1, default=float))


def _fingerprint(model) -> float:
    """A cheap weight fingerprint: the sum of every parameter, in float64."""
    return float(sum(p.detach().double().sum() for p in model.parameters()))
