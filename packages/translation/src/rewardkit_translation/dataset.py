"""The translation JSONL: one row per source sentence, and its exemplar file.

Row schema (one JSON object per line):

    {"id": "...",              optional; default: a hash of the languages and the source
     "source": "...",          required
     "source_lang": "en",      optional; identified with py3langid when absent
     "target_lang": "de",      required, one of the 11 languages
     "reference": "...",       optional
     "exemplar": "...",        optional (else taken from the exemplar file)
     "split": "train"|"test"}  optional

Exemplars written by `rewardkit-translation exemplars` live beside the data in
`<stem>.exemplars.jsonl`, one {"id", "exemplar", "model"} per line, appended as they are
written so that an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rewardkit_translation.languages import check_language, identify

OPTIONAL_TEXT = ("reference", "exemplar")


class DataError(ValueError):
    """A row of a translation JSONL is malformed."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"translation data file {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(
                f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}"
            )
        row["_line"] = n
        rows.append(row)
    return rows


def row_id(row: dict[str, Any]) -> str:
    """The row's `id`, or a stable hash of (source_lang, target_lang, source)."""
    if row.get("id") is not None:
        return str(row["id"])
    key = f"{row.get('source_lang', '')}\t{row['target_lang']}\t{row['source']}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def validate_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A checked copy of a row with `id` and `source_lang` filled in."""
    row = {k: v for k, v in row.items() if k != "_line"}
    source = row.get("source")
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"{where}: 'source' must be a non-empty string, got {source!r}")
    if "target_lang" not in row:
        raise DataError(f"{where}: missing 'target_lang'")
    try:
        check_language(row["target_lang"], "target_lang")
        if row.get("source_lang") is None:
            row["source_lang"] = identify(source).language
        check_language(row["source_lang"], "source_lang")
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    if row["source_lang"] == row["target_lang"]:
        raise DataError(f"{where}: source_lang and target_lang are both {row['target_lang']!r}")
    for key in OPTIONAL_TEXT:
        if row.get(key) is not None and not isinstance(row[key], str):
            raise DataError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}")
    if row.get("split") not in (None, "train", "test"):
        raise DataError(f"{where}: 'split' must be 'train' or 'test', got {row['split']!r}")
    row["id"] = row_id(row)
    return row


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a translation JSONL; duplicate ids are an error."""
    rows, seen = [], {}
    for raw in read_jsonl(path):
        where = f"{path}:{raw['_line']}"
        row = validate_row(raw, where)
        if row["id"] in seen:
            raise DataError(
                f"{where}: duplicate id {row['id']!r} (first on line {seen[row['id']]})"
            )
        seen[row["id"]] = raw["_line"]
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def exemplar_path(data_path: str | Path) -> Path:
    """Where the exemplars of a data file live: beside it, `<stem>.exemplars.jsonl`."""
    data_path = Path(data_path)
    return data_path.with_name(data_path.stem + ".exemplars.jsonl")


def read_exemplars(path: str | Path) -> tuple[dict[str, str], int]:
    """(id -> exemplar, byte length of the complete lines). A last line cut off by an
    interruption (no newline, not valid JSON) is ignored; any other bad line is an error."""
    path = Path(path)
    if not path.exists():
        return {}, 0
    data = path.read_bytes()
    found: dict[str, str] = {}
    good = 0
    lines = data.split(b"\n")
    for n, line in enumerate(lines, start=1):
        last = n == len(lines)
        if not line.strip():
            good += len(line) + (0 if last else 1)
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
            found[str(entry["id"])] = str(entry["exemplar"])
        except (ValueError, KeyError) as exc:
            if last:  # a write interrupted half-way
                break
            raise DataError(f"{path}:{n}: bad exemplar line ({exc})") from None
        if last:  # complete JSON but no newline: keep it, but a newline is needed first
            good += len(line)
            break
        good += len(line) + 1
    return found, good


def attach_exemplars(rows: list[dict[str, Any]], exemplars: dict[str, str]) -> None:
    """Fill `exemplar` from the exemplar file where the row has none of its own."""
    for row in rows:
        if row.get("exemplar") is None and row["id"] in exemplars:
            row["exemplar"] = exemplars[row["id"]]
