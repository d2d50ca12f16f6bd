"""MovieLens-100K: loading the shipped files and the chronological leave-one-out split.

The files in `rewardkit_recsys/data/` are RecBole's atomic-file copy of ML-100K
(`ml-100k.inter`: user_id, item_id, rating, timestamp; `ml-100k.item`: item_id,
movie_title, release_year, class = genres), tab-separated with typed headers such as
`user_id:token`. See scripts/fetch_ml100k.py for how they were obtained and the README
for the GroupLens licence note.

Split (as in GREAM and SASRec): sort each user's interactions by time (ties keep file
order); the last item is the test target, the second to last the validation target, and
every earlier position t ≥ 1 is a training example predicting item t from the items
before it. Histories are capped at the `max_history` most recent items (20).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DATA = resources.files("rewardkit_recsys") / "data"


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    year: str
    genres: tuple[str, ...]

    def text(self) -> str:
        """What the text encoder embeds: title, year and genres."""
        return f"{self.title} ({self.year}). Genres: {', '.join(self.genres)}."


@dataclass(frozen=True)
class Example:
    """Predict `target` from `history` (item ids, oldest first)."""

    user: str
    history: tuple[str, ...]
    target: str


@dataclass
class Split:
    train: list[Example] = field(default_factory=list)
    valid: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    sequences: dict[str, list[str]] = field(default_factory=dict)  # user → all items, in order

    def seen_before(self, user: str, split: str) -> set[str]:
        """Every item the user had before the target of `split` ("valid" or "test"),
        however long ago (histories keep only the latest few)."""
        cut = {"valid": -2, "test": -1}
        if split not in cut:
            raise ValueError(f"seen_before: split must be 'valid' or 'test', got {split!r}")
        return set(self.sequences[user][: cut[split]])


def _read_atomic(path: Path | str, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a RecBole atomic file as dicts keyed by the bare column names."""
    path = Path(str(path))
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks the columns {missing}")
        rows = []
        for line_no, values in enumerate(reader, start=2):
            if len(values) != len(header):
                raise ValueError(
                    f"{path}:{line_no}: {len(values)} fields, header has {len(header)}"
                )
            rows.append(dict(zip(header, values, strict=True)))
    return rows


def load_items(path: Path | str | None = None) -> dict[str, Item]:
    """item id → Item from ml-100k.item."""
    rows = _read_atomic(
        path or DATA / "ml-100k.item", ("item_id", "movie_title", "release_year", "class")
    )
    items = {}
    for r in rows:
        if r["item_id"] in items:
            raise ValueError(f"ml-100k.item: item {r['item_id']!r} appears twice")
        items[r["item_id"]] = Item(
            r["item_id"],
            r["movie_title"].strip(),
            r["release_year"].strip(),
            tuple(r["class"].split()),
        )
    return items


def load_interactions(path: Path | str | None = None) -> list[tuple[str, str, float]]:
    """(user, item, timestamp) triples from ml-100k.inter, in file order."""
    rows = _read_atomic(path or DATA / "ml-100k.inter", ("user_id", "item_id", "timestamp"))
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            out.append((r["user_id"], r["item_id"], float(r["timestamp"])))
        except ValueError:
            raise ValueError(
                f"ml-100k.inter:{i}: timestamp {r['timestamp']!r} is not a number"
            ) from None
    return out


def user_sequences(interactions: list[tuple[str, str, float]]) -> dict[str, list[str]]:
    """user → items sorted by timestamp (a stable sort: ties keep file order)."""
    per_user: dict[str, list[tuple[float, int, str]]] = {}
    for order, (user, item, ts) in enumerate(interactions):
        per_user.setdefault(user, []).append((ts, order, item))
    return {u: [item for _, _, item in sorted(events)] for u, events in per_user.items()}


def leave_one_out(sequences: dict[str, list[str]], max_history: int = 20) -> Split:
    """Chronological leave-one-out; every user needs at least 3 interactions."""
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    split = Split(sequences={u: list(seq) for u, seq in sequences.items()})
    for user, seq in sequences.items():
        if len(seq) < 3:
            raise ValueError(
                f"user {user!r} has {len(seq)} interactions; leave-one-out needs "
                f"at least 3 (train, validation, test)"
            )
        n = len(seq)
        split.test.append(Example(user, tuple(seq[: n - 1][-max_history:]), seq[n - 1]))
        split.valid.append(Example(user, tuple(seq[: n - 2][-max_history:]), seq[n - 2]))
        for t in range(1, n - 2):
            split.train.append(Example(user, tuple(seq[:t][-max_history:]), seq[t]))
    return split


def load_ml100k(max_history: int = 20) -> tuple[dict[str, Item], Split]:
    """Items and the leave-one-out split of the shipped MovieLens-100K."""
    items = load_items()
    interactions = load_interactions()
    unknown = sorted({i for _, i, _ in interactions} - set(items))
    if unknown:
        raise ValueError(f"ml-100k.inter names items missing from ml-100k.item: {unknown[:5]}")
    return items, leave_one_out(user_sequences(interactions), max_history)
