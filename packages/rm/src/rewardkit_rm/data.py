"""Preference data: pairs and ratings, their JSONL format, splits by problem, encoding.

One JSON object per line. A pair:

    {"prompt": "..." or [{"role": ..., "content": ...}], "chosen": "...", "rejected": "...",
     "problem_id": "...", "source": "...",             # optional
     "margin": 1.5, "strength": 0.8,                   # optional, for bt_margin / bt_smooth
     "chosen_level": "good", "rejected_level": "bad",  # optional, for ordinal's regions
     "split": "train" | "test"}                        # optional, overrides the hash split

A rating (regression): {"prompt": ..., "response": "...", "ratings": {"helpfulness": 3, ...}}
or {"prompt": ..., "response": ..., "rating": 3}.

Bad input: a pair whose chosen and rejected are the same text is skipped and counted
(`LoadReport.identical`, with its line numbers, and a warning); a rating outside the
declared scale, a missing field or a malformed line is an error naming file and line.

Splits are by problem, never by pair: a row's `problem_id` (else a hash of its prompt)
is hashed to "train" or "test", so every pair of a problem lands on the same side.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

Prompt = str | list[dict[str, str]]
SPLITS = ("train", "test")


@dataclass
class Pair:
    prompt: Prompt
    chosen: str
    rejected: str
    problem_id: str = ""
    source: str = "data"
    margin: float | None = None
    strength: float | None = None
    chosen_level: str | None = None
    rejected_level: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.problem_id:
            self.problem_id = prompt_key(self.prompt)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


@dataclass
class Rating:
    prompt: Prompt
    response: str
    ratings: dict[str, float]
    problem_id: str = ""
    source: str = "data"
    split: str | None = None

    def __post_init__(self) -> None:
        if not self.problem_id:
            self.problem_id = prompt_key(self.prompt)


@dataclass
class LoadReport:
    """What a load kept and what it skipped (never silently)."""

    rows: int = 0
    kept: int = 0
    identical: int = 0
    identical_lines: list[str] = field(default_factory=list)

    def add(self, other: LoadReport) -> None:
        self.rows += other.rows
        self.kept += other.kept
        self.identical += other.identical
        self.identical_lines += other.identical_lines


def prompt_key(prompt: Prompt) -> str:
    """A stable id of a prompt's text (rows without a problem_id)."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
    return "prompt:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def split_of(problem_id: str, test_fraction: float, salt: str = "") -> str:
    """ "train" or "test" from a hash of the problem id (the same on every machine)."""
    h = int(hashlib.sha256((salt + problem_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


def split_rows(rows: Sequence[Any], test_fraction: float, salt: str = "") -> dict[str, list]:
    """{"train": [...], "test": [...]}: a row's own `split` when it has one, else by the
    hash of its problem id. A problem never lands on both sides (checked)."""
    out: dict[str, list] = {"train": [], "test": []}
    side: dict[str, str] = {}
    for row in rows:
        s = row.split or split_of(row.problem_id, test_fraction, salt)
        if s not in SPLITS:
            raise ValueError(f"problem {row.problem_id!r}: split must be train or test, got {s!r}")
        if side.setdefault(row.problem_id, s) != s:
            raise ValueError(
                f"problem {row.problem_id!r} has rows in both splits; splits are by problem"
            )
        out[s].append(row)
    return out


# -- reading --------------------------------------------------------------------------------


def _check_prompt(prompt: Any, where: str) -> Prompt:
    if isinstance(prompt, str):
        return prompt
    if (
        isinstance(prompt, list)
        and prompt
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in prompt
        )
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise ValueError(f"{where}: prompt must be a string or a list of {{role, content}} messages")


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def parse_pair(record: dict[str, Any], where: str) -> Pair:
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in record]
    if missing:
        raise ValueError(f"{where}: a pair needs {missing}; the row has {sorted(record)}")
    for key in ("chosen", "rejected"):
        if not isinstance(record[key], str):
            raise ValueError(f"{where}: {key} must be a string, got {type(record[key]).__name__}")
    optional = {}
    for key in ("margin", "strength"):
        if record.get(key) is not None:
            optional[key] = _number(record[key], key, where)
    if optional.get("margin", 0.0) < 0:
        raise ValueError(f"{where}: margin must be >= 0, got {optional['margin']}")
    extra = set(record) - {f for f in Pair.__dataclass_fields__} - {"id"}
    meta = {k: record[k] for k in extra}
    return Pair(
        prompt=_check_prompt(record["prompt"], where),
        chosen=record["chosen"],
        rejected=record["rejected"],
        problem_id=str(record.get("problem_id") or record.get("id") or ""),
        source=str(record.get("source") or "data"),
        chosen_level=record.get("chosen_level"),
        rejected_level=record.get("rejected_level"),
        split=record.get("split"),
        meta={**record.get("meta", {}), **meta},
        **optional,
    )


def parse_rating(
    record: dict[str, Any], where: str, attributes: Sequence[str], scale: Sequence[float]
) -> Rating:
    missing = [k for k in ("prompt", "response") if k not in record]
    if missing or ("ratings" not in record and "rating" not in record):
        raise ValueError(
            f"{where}: a rating row needs prompt, response and ratings (or rating); "
            f"the row has {sorted(record)}"
        )
    raw = record.get("ratings", {attributes[0]: record.get("rating")})
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: ratings must be a mapping of attribute to number")
    lo, hi = scale
    ratings = {}
    for attr in attributes:
        if attr not in raw:
            raise ValueError(f"{where}: no rating for attribute {attr!r} (has {sorted(raw)})")
        value = _number(raw[attr], f"rating {attr!r}", where)
        if not lo <= value <= hi:
            raise ValueError(
                f"{where}: rating {attr!r} = {value} is outside the declared scale [{lo}, {hi}]"
            )
        ratings[attr] = value
    if not isinstance(record["response"], str):
        raise ValueError(f"{where}: response must be a string")
    return Rating(
        prompt=_check_prompt(record["prompt"], where),
        response=record["response"],
        ratings=ratings,
        problem_id=str(record.get("problem_id") or record.get("id") or ""),
        source=str(record.get("source") or "data"),
        split=record.get("split"),
    )


def read_jsonl(path: str | Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """(where, record) per non-empty line; a line that is not a JSON object is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file {path}")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: each line must be a JSON object")
            yield where, record


def load_pairs(path: str | Path, report: LoadReport | None = None) -> list[Pair]:
    """Pairs from a JSONL file; identical chosen/rejected are skipped and counted."""
    report = report if report is not None else LoadReport()
    pairs = []
    for where, record in read_jsonl(path):
        report.rows += 1
        pair = parse_pair(record, where)
        if pair.chosen.strip() == pair.rejected.strip():
            report.identical += 1
            report.identical_lines.append(where)
            continue
        pairs.append(pair)
        report.kept += 1
    if report.identical:
        log.warning(
            "%s: skipped %d pairs whose chosen and rejected are identical (first: %s)",
            path,
            report.identical,
            report.identical_lines[0],
        )
    return pairs


def load_ratings(
    path: str | Path,
    attributes: Sequence[str],
    scale: Sequence[float],
    report: LoadReport | None = None,
) -> list[Rating]:
    report = report if report is not None else LoadReport()
    rows = []
    for where, record in read_jsonl(path):
        report.rows += 1
        rows.append(parse_rating(record, where, attributes, scale))
        report.kept += 1
    return rows


def write_jsonl(rows: Iterable[Pair | dict[str, Any]], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_json() if isinstance(row, Pair) else row) + "\n")
            n += 1
    return n


# -- encoding -------------------------------------------------------------------------------


def encode(
    tokenizer: Any, prompt: Prompt, response: str, max_length: int
) -> tuple[list[int], int, bool]:
    """(ids, prompt_last, truncated) of one (prompt, response).

    Chat prompts go through the tokenizer's chat template with the response as the
    assistant's turn (the format the policy is sampled in); text prompts are followed by
    the response as plain text; trailing whitespace of the response is dropped (a sampled
    completion that stopped after a newline reads as the same answer). Sequences over
    `max_length` keep their end (the head reads the last token); `prompt_last` is the
    prompt's last token in the kept ids (0 if the prompt was cut away entirely)."""
    if isinstance(prompt, str):
        prompt_ids = list(tokenizer(prompt)["input_ids"])
        ids = list(tokenizer(prompt + response.rstrip())["input_ids"])
    else:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat prompts need a tokenizer with a chat template")
        prompt_ids = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        ids = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": response.rstrip()}],
            tokenize=True,
            return_dict=False,
        )
    cut = max(0, len(ids) - max_length)
    return list(ids[cut:]), max(0, len(prompt_ids) - 1 - cut), cut > 0


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@dataclass
class Encoded:
    """A pre-tokenized row (so that each epoch does not tokenize again)."""

    ids: list[int]  # pairs: chosen ids; ratings: response ids
    prompt_last: int
    rejected_ids: list[int] | None = None
    rejected_prompt_last: int = 0
    row: Pair | Rating | None = None


def encode_rows(
    tokenizer: Any, rows: Sequence[Pair | Rating], max_length: int
) -> tuple[list[Encoded], int]:
    """(encoded rows, number of truncated sequences)."""
    out, truncated = [], 0
    for row in rows:
        if isinstance(row, Pair):
            c, cp, ct = encode(tokenizer, row.prompt, row.chosen, max_length)
            r, rp, rt = encode(tokenizer, row.prompt, row.rejected, max_length)
            truncated += ct + rt
            out.append(Encoded(c, cp, r, rp, row))
        else:
            ids, p, t = encode(tokenizer, row.prompt, row.response, max_length)
            truncated += t
            out.append(Encoded(ids, p, row=row))
    return out, truncated


def collate_pairs(items: list[Encoded], pad_id: int) -> dict[str, Any]:
    """Chosen rows first, then rejected (TRL's layout): input_ids (2B, T), attention_mask,
    prompt_last (2B,), and the per-pair fields the losses read."""
    ids, mask = pad_batch([e.ids for e in items] + [e.rejected_ids for e in items], pad_id)
    batch: dict[str, Any] = {
        "input_ids": ids,
        "attention_mask": mask,
        "prompt_last": torch.tensor(
            [e.prompt_last for e in items] + [e.rejected_prompt_last for e in items]
        ),
    }
    pairs = [e.row for e in items]
    for key in ("margin", "strength"):
        values = [getattr(p, key) for p in pairs]
        if all(v is not None for v in values):
            batch[key] = torch.tensor(values, dtype=torch.float32)
    for key in ("chosen_level", "rejected_level"):
        values = [getattr(p, key) for p in pairs]
        if any(v is not None for v in values):
            batch[key] = values
    return batch


def collate_ratings(items: list[Encoded], pad_id: int, attributes: Sequence[str]) -> dict[str, Any]:
    ids, mask = pad_batch([e.ids for e in items], pad_id)
    ratings = torch.tensor([[e.row.ratings[a] for a in attributes] for e in items])
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "prompt_last": torch.tensor([e.prompt_last for e in items]),
        "ratings": ratings,
    }
