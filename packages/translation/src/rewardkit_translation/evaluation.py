"""Corpus evaluation: BLEU and chrF per direction, with the sacrebleu signature.

Predictions are a JSONL of {"id", and one of "translation" / "completion" / "exemplar"}
(completions are cut to the text after </think>), matched to the data rows by id. Every
row with a reference must have a prediction; rows without a reference cannot be scored
and are counted in the result, not dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rewardkit_translation.dataset import DataError, load_rows, read_exemplars
from rewardkit_translation.format import extract_translation
from rewardkit_translation.metrics import CorpusResult, corpus_scores

TEXT_KEYS = ("translation", "completion", "exemplar")


@dataclass
class DirectionResult:
    direction: str  # "en-de"
    segments: int
    scores: dict[str, CorpusResult]


def read_predictions(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if path.name.endswith(".exemplars.jsonl"):
        return read_exemplars(path)[0]
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
        key = next((k for k in TEXT_KEYS if k in entry), None)
        if "id" not in entry or key is None:
            raise DataError(
                f"{path}:{n}: a prediction needs 'id' and one of {', '.join(TEXT_KEYS)}"
            )
        text = entry[key]
        out[str(entry["id"])] = extract_translation(text) if key == "completion" else text.strip()
    return out


def evaluate(data: str | Path, predictions: dict[str, str]) -> tuple[list[DirectionResult], int]:
    """Per-direction corpus scores, and the number of rows without a reference."""
    rows = load_rows(data)
    scored = [r for r in rows if r.get("reference")]
    missing = [r["id"] for r in scored if r["id"] not in predictions]
    if missing:
        raise DataError(
            f"{len(missing)} rows of {data} have no prediction (first: {', '.join(missing[:5])})"
        )
    by_direction: dict[str, list[dict]] = {}
    for r in scored:
        by_direction.setdefault(f"{r['source_lang']}-{r['target_lang']}", []).append(r)
    results = []
    for direction, group in sorted(by_direction.items()):
        hyps = [predictions[r["id"]] for r in group]
        refs = [r["reference"] for r in group]
        scores = corpus_scores(hyps, refs, target_lang=group[0]["target_lang"])
        results.append(DirectionResult(direction, len(group), scores))
    return results, len(rows) - len(scored)


def format_results(results: list[DirectionResult], unreferenced: int) -> str:
    lines = []
    for d in results:
        lines.append(f"{d.direction} ({d.segments} segments)")
        for name in ("bleu", "chrf"):
            lines.append(f"  {d.scores[name].text}")
            lines.append(f"    signature: {d.scores[name].signature}")
    if unreferenced:
        lines.append(f"{unreferenced} rows have no reference and were not scored")
    return "\n".join(lines)
