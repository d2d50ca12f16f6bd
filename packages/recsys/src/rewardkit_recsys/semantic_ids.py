"""Semantic item IDs (GREAM, arXiv 2510.20815, §3.1 Collaborative-Semantic Alignment).

An item's ID is its L residual k-means codes written as tokens `<|a_k|><|b_k|>…` (level
letter, 1-based code). Items whose L codes collide get one more token at level L+1: their
1-based rank within the collision group (in catalogue order). So every ID is L or L+1
tokens, all IDs are distinct, and no ID is a proper prefix of another (the prefix trie of
constrained decoding relies on that).

`SemanticIDs` holds the map item ↔ ID; it is saved as JSON with both directions and
validated both ways on load.
"""

from __future__ import annotations

import json
import re
import string
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardkit_recsys.kmeans import residual_kmeans

LETTERS = string.ascii_lowercase
TOKEN = re.compile(r"<\|([a-z])_(\d+)\|>")


class SemanticIDError(ValueError):
    """An ID map or an ID string is malformed."""


def id_token(level: int, code: int) -> str:
    """`id_token(0, 3)` = '<|a_3|>': level is 0-based, code is 1-based."""
    return f"<|{LETTERS[level]}_{code}|>"


def split_id(text: str) -> list[str]:
    """The ID tokens of `text`, which must consist of ID tokens only (spaces around allowed).

    Raises SemanticIDError naming the first stray character.
    """
    text = text.strip()
    tokens, pos = [], 0
    for m in TOKEN.finditer(text):
        if m.start() != pos:
            raise SemanticIDError(f"not an ID: unexpected {text[pos : m.start()]!r} in {text!r}")
        tokens.append(m.group())
        pos = m.end()
    if pos != len(text) or not tokens:
        raise SemanticIDError(f"not an ID: unexpected {text[pos:]!r} in {text!r}")
    return tokens


@dataclass
class SemanticIDs:
    """The map item ↔ ID. `item_to_id[item]` is the ID string (L or L+1 tokens)."""

    levels: int
    codes_per_level: int
    suffix_size: int  # number of collision-suffix tokens (level L+1); 0 when nothing collides
    item_to_id: dict[str, str]

    def __post_init__(self) -> None:
        self.id_to_item = {v: k for k, v in self.item_to_id.items()}
        self.validate()

    # -- vocabulary --------------------------------------------------------------------
    def vocabulary(self) -> list[str]:
        """Every ID token: K per level, then the collision-suffix tokens."""
        tokens = [
            id_token(lv, c) for lv in range(self.levels) for c in range(1, self.codes_per_level + 1)
        ]
        tokens += [id_token(self.levels, c) for c in range(1, self.suffix_size + 1)]
        return tokens

    def item_of(self, id_text: str) -> str | None:
        """The item whose ID is `id_text` (spaces ignored), None when no item has it."""
        try:
            return self.id_to_item.get("".join(split_id(id_text)))
        except SemanticIDError:
            return None

    # -- validation --------------------------------------------------------------------
    def validate(self, catalogue: Sequence[str] | None = None) -> None:
        """Checks both directions: ID → item → ID and item → ID → item are identities,
        every ID is L or L+1 well-formed tokens, none is a prefix of another; with
        `catalogue`, the map covers exactly those items."""
        L, K = self.levels, self.codes_per_level
        if not isinstance(L, int) or not 1 <= L < len(LETTERS):
            raise SemanticIDError(f"levels must be an int in 1..{len(LETTERS) - 1}, got {L!r}")
        if not isinstance(K, int) or K < 1:
            raise SemanticIDError(f"codes_per_level must be a positive int, got {K!r}")
        if len(self.id_to_item) != len(self.item_to_id):
            dup: dict[str, list[str]] = defaultdict(list)
            for item, sid in self.item_to_id.items():
                dup[sid].append(item)
            clash = next(items for items in dup.values() if len(items) > 1)
            raise SemanticIDError(f"items {clash} share the ID {self.item_to_id[clash[0]]!r}")
        for item, sid in self.item_to_id.items():
            tokens = split_id(sid)
            if sid != "".join(tokens):
                raise SemanticIDError(f"item {item!r}: ID {sid!r} has surrounding spaces")
            if len(tokens) not in (L, L + 1):
                raise SemanticIDError(
                    f"item {item!r}: ID {sid!r} has {len(tokens)} tokens, expected {L} or {L + 1}"
                )
            for level, tok in enumerate(tokens):
                letter, code = TOKEN.fullmatch(tok).groups()
                limit = K if level < L else self.suffix_size
                if letter != LETTERS[level] or not 1 <= int(code) <= limit:
                    raise SemanticIDError(
                        f"item {item!r}: token {tok!r} at position {level} "
                        f"must be <|{LETTERS[level]}_1..{limit}|>"
                    )
        prefixes = {
            "".join(split_id(s)[:L]) for s in self.item_to_id.values() if len(split_id(s)) == L + 1
        }
        for item, sid in self.item_to_id.items():
            if sid in prefixes:
                raise SemanticIDError(f"item {item!r}: ID {sid!r} is a prefix of another ID")
        if catalogue is not None:
            missing = [i for i in catalogue if i not in self.item_to_id]
            extra = sorted(set(self.item_to_id) - set(catalogue))
            if missing or extra:
                raise SemanticIDError(
                    f"ID map does not match the catalogue: items without an ID "
                    f"{missing[:5]}, IDs of unknown items {extra[:5]}"
                )

    # -- JSON --------------------------------------------------------------------------
    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "levels": self.levels,
            "codes_per_level": self.codes_per_level,
            "suffix_size": self.suffix_size,
            "item_to_id": self.item_to_id,
            "id_to_item": self.id_to_item,
        }
        path.write_text(json.dumps(data, indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> SemanticIDs:
        """Loads and validates both stored directions against each other."""
        data = json.loads(Path(path).read_text())
        keys = {"levels", "codes_per_level", "suffix_size", "item_to_id", "id_to_item"}
        if not isinstance(data, dict) or set(data) != keys:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise SemanticIDError(f"{path}: expected keys {sorted(keys)}, found {found}")
        ids = cls(
            data["levels"],
            data["codes_per_level"],
            data["suffix_size"],
            {str(k): v for k, v in data["item_to_id"].items()},
        )
        stored = {k: str(v) for k, v in data["id_to_item"].items()}
        if stored != ids.id_to_item:
            bad = next(
                s
                for s in set(stored) | set(ids.id_to_item)
                if stored.get(s) != ids.id_to_item.get(s)
            )
            raise SemanticIDError(
                f"{path}: id_to_item[{bad!r}] = {stored.get(bad)!r} but "
                f"item_to_id says {ids.id_to_item.get(bad)!r}"
            )
        return ids


def codes_to_ids(codes: np.ndarray, item_ids: Sequence[str], codes_per_level: int) -> SemanticIDs:
    """Turn 0-based (n, L) codes into IDs, adding the collision suffix where L codes repeat."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != len(item_ids):
        raise SemanticIDError(f"codes must be (n_items={len(item_ids)}, L), got {codes.shape}")
    if len(set(item_ids)) != len(item_ids):
        raise SemanticIDError("item_ids contain duplicates")
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, row in enumerate(codes.tolist()):
        groups[tuple(row)].append(i)
    suffix_size = max((len(g) for g in groups.values() if len(g) > 1), default=0)
    item_to_id = {}
    for key, members in groups.items():
        base = "".join(id_token(lv, c + 1) for lv, c in enumerate(key))
        for rank, i in enumerate(members, start=1):
            suffix = id_token(len(key), rank) if len(members) > 1 else ""
            item_to_id[str(item_ids[i])] = base + suffix
    return SemanticIDs(codes.shape[1], codes_per_level, suffix_size, item_to_id)


def build_semantic_ids(
    embeddings: np.ndarray,
    item_ids: Sequence[str],
    levels: int = 4,
    codes_per_level: int = 256,
    seed: int = 42,
) -> SemanticIDs:
    """Balanced residual k-means over item embeddings, then the collision suffix."""
    codes = residual_kmeans(embeddings, levels, codes_per_level, seed=seed)
    return codes_to_ids(codes, [str(i) for i in item_ids], codes_per_level)


def extend_tokenizer(tokenizer, model, ids: SemanticIDs, mean_resizing: bool = True) -> int:
    """Add every ID token to the tokenizer (as ordinary, non-special added tokens, so
    `decode(skip_special_tokens=True)` keeps them) and resize the model's embeddings
    (new rows drawn around the old rows' mean with `mean_resizing`, the transformers
    default for pretrained models; plain random init otherwise).
    Returns the number of tokens added (0 when they were all there)."""
    from tokenizers import AddedToken

    vocab = tokenizer.get_vocab()
    new = [
        AddedToken(t, normalized=False, special=False) for t in ids.vocabulary() if t not in vocab
    ]
    added = tokenizer.add_tokens(new)
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=mean_resizing)
    return added
