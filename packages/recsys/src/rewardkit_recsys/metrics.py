"""Top-K metrics of sequential recommendation with one held-out target per user.

Full ranking: the ranked list is over the whole catalogue (no sampled negatives); a target
missing from the list counts as a miss. With one relevant item the ideal DCG is 1, so

    Recall@K = 1[rank ≤ K]                      (= Hit@K)
    NDCG@K   = 1[rank ≤ K] / log2(rank + 1)     (rank is 1-based)

averaged over users.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_KS = (1, 5, 10)


def target_rank(ranking: Sequence[str], target: str) -> int | None:
    """1-based position of `target` in `ranking`, None when absent; duplicates are an error."""
    if len(set(ranking)) != len(ranking):
        dup = next(i for i in ranking if list(ranking).count(i) > 1)
        raise ValueError(f"ranking lists item {dup!r} more than once")
    for pos, item in enumerate(ranking, start=1):
        if item == target:
            return pos
    return None


def recall_ndcg(
    rankings: Sequence[Sequence[str]], targets: Sequence[str], ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """{"recall@K": …, "ndcg@K": …} for each K, averaged over the (ranking, target) pairs."""
    if len(rankings) != len(targets):
        raise ValueError(f"{len(rankings)} rankings but {len(targets)} targets")
    if not targets:
        raise ValueError("recall_ndcg: no users to evaluate")
    bad = [k for k in ks if not isinstance(k, int) or k < 1]
    if bad or not ks:
        raise ValueError(f"recall_ndcg: cut-offs must be positive ints, got {list(ks)}")
    totals = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for ranking, target in zip(rankings, targets, strict=True):
        rank = target_rank(ranking, target)
        for k in ks:
            if rank is not None and rank <= k:
                totals[f"recall@{k}"] += 1.0
                totals[f"ndcg@{k}"] += 1.0 / math.log2(rank + 1)
    return {name: value / len(targets) for name, value in totals.items()}


def ndcg_per_user(
    rankings: Sequence[Sequence[str]], targets: Sequence[str], k: int = 10
) -> list[float]:
    """NDCG@k of each (ranking, target) pair: the per-user values a paired test compares."""
    if len(rankings) != len(targets):
        raise ValueError(f"{len(rankings)} rankings but {len(targets)} targets")
    return [recall_ndcg([r], [t], ks=(k,))[f"ndcg@{k}"] for r, t in zip(rankings, targets)]
