"""Prompts of the GREAM curriculum (arXiv 2510.20815, §3.2) and the curriculum mixer.

Four supervised tasks, each a (prompt, completion) pair:

- seqrec:    history of IDs → next item's ID
- item2id:   item title (year) → ID
- id2title:  ID → item title
- reasoning: history → `<think> analysis </think><answer>ID</answer>`

The recommendation prompts are compact: the history's IDs back to back, then one marker
character (`>` for seqrec, `?` for reasoning), so that a small model trained from scratch
spends its capacity on the item sequence rather than on English. A seqrec pair sets
`label_prompt`: alignment also trains on the history's ID tokens, each predicted from the
items before it (SASRec-style next-item loss at every position), so one pair teaches up
to `max_history` + 1 next-item predictions.

Without a teacher model the rationale is templated from item metadata (genres, years):
the history's dominant genres and decade, the latest item's genres, and the intent (the
target's genres), which keeps the format learnable. `curriculum_mix` mixes reasoning
samples into the alignment stream with a probability that grows linearly through the epoch.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from rewardkit_recsys.movielens import Example, Item
from rewardkit_recsys.semantic_ids import SemanticIDs

SEQREC = "{history}>"
REASONING = "{history}?"
ITEM2ID = "Movie: {title} ({year})\nID:"
ID2TITLE = "Movie {id} is titled:"

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _history(ids: SemanticIDs, history: Sequence[str]) -> str:
    if not history:
        raise ValueError("a recommendation prompt needs a non-empty history")
    return "".join(ids.item_to_id[i] for i in history)


def seqrec_prompt(ids: SemanticIDs, history: Sequence[str]) -> str:
    return SEQREC.format(history=_history(ids, history))


def reasoning_prompt(ids: SemanticIDs, history: Sequence[str]) -> str:
    return REASONING.format(history=_history(ids, history))


def templated_rationale(items: dict[str, Item], history: Sequence[str], target: str) -> str:
    """A short rationale from metadata: the history's two dominant genres and decade, the
    latest item's genres, and the intent (the genres of the target)."""
    genres = Counter(g for i in history for g in items[i].genres)
    top = ",".join(g for g, _ in genres.most_common(2)) or "none"
    years = [int(items[i].year) for i in history if items[i].year.isdigit()]
    decade = f"{Counter(y // 10 * 10 for y in years).most_common(1)[0][0]}s" if years else "?"
    last = ",".join(items[history[-1]].genres) or "none"
    intent = ",".join(items[target].genres) or "none"
    return f"likes {top} of the {decade}; last {last}; next {intent}"


def seqrec_pair(ids: SemanticIDs, ex: Example) -> dict[str, Any]:
    return {
        "task": "seqrec",
        "prompt": seqrec_prompt(ids, ex.history),
        "completion": ids.item_to_id[ex.target],
        "mode": "direct",
        "label_prompt": True,  # also learn each history item from the ones before it
    }


def reasoning_pair(
    ids: SemanticIDs,
    items: dict[str, Item],
    ex: Example,
    rationale: Callable[[Example], str] | None = None,
) -> dict[str, Any]:
    """`rationale(example)` is a teacher's text; the templated one is used without it."""
    text = rationale(ex) if rationale else templated_rationale(items, ex.history, ex.target)
    return {
        "task": "reasoning",
        "prompt": reasoning_prompt(ids, ex.history),
        "completion": f"<think>{text}</think><answer>{ids.item_to_id[ex.target]}</answer>",
        "mode": "reasoning",
    }


def item2id_pair(ids: SemanticIDs, item: Item) -> dict[str, Any]:
    return {
        "task": "item2id",
        "prompt": ITEM2ID.format(title=item.title, year=item.year),
        "completion": ids.item_to_id[item.item_id],
        "mode": "direct",
    }


def id2title_pair(ids: SemanticIDs, item: Item) -> dict[str, Any]:
    return {
        "task": "id2title",
        "prompt": ID2TITLE.format(id=ids.item_to_id[item.item_id]),
        "completion": item.title,
        "mode": "direct",
    }


def curriculum_mix(
    alignment: Sequence[Any],
    reasoning: Sequence[Any],
    p_start: float = 0.0,
    p_end: float = 0.5,
    seed: int = 0,
) -> list[Any]:
    """One epoch: the shuffled alignment samples in order; after the t-th of N, a reasoning
    sample (cycling through the shuffled reasoning pool) with probability

        p(t) = p_start + (p_end − p_start) · t / max(N − 1, 1)
    """
    for name, p in (("p_start", p_start), ("p_end", p_end)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"curriculum_mix: {name} must be in [0, 1], got {p}")
    if not alignment:
        raise ValueError("curriculum_mix: no alignment samples")
    if not reasoning and max(p_start, p_end) > 0:
        raise ValueError("curriculum_mix: reasoning probability > 0 but no reasoning samples")
    rng = random.Random(seed)
    align = list(alignment)
    rng.shuffle(align)
    pool = list(reasoning)
    rng.shuffle(pool)
    out, used, n = [], 0, len(align)
    for t, sample in enumerate(align):
        out.append(sample)
        if rng.random() < p_start + (p_end - p_start) * t / max(n - 1, 1):
            out.append(pool[used % len(pool)])
            used += 1
    return out
