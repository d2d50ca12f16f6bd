"""The ExTrans output format gate: `<think> reasoning </think>` then the translation only.

ExTrans (arXiv 2505.12996) gates every reward by the output format: the completion must
open with one `<think>...</think>` block and be followed by the translation and nothing
else. The gate fails (reward 0) when

- there is no think block, or it is not closed, or it does not open the completion;
- there is a second `<think>` or `</think>` tag anywhere;
- the text after `</think>` is empty;
- the text after `</think>` carries explanations marked as such: a line starting with a
  label such as "Note:", "Explanation:" or "Translation:" (in any of the 11 languages), or
  a Markdown code fence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"

# Labels that mark commentary (or a labelled answer) rather than a bare translation, as
# the first word(s) of a line followed by a colon (ASCII or full-width): "translation",
# "note", "explanation" ... in each of the 11 languages.
LABELS_BY_LANGUAGE: dict[str, str] = {  # "|"-separated
    "en": "note|notes|explanation|explanations|translation|translated text|reasoning|comment"
    "|comments|answer|output|here is the translation|here's the translation|source|target",
    "ar": "الترجمة|ملاحظة|شرح",
    "cs": "překlad|poznámka|vysvětlení",
    "de": "übersetzung|anmerkung|hinweis|erklärung",
    "es": "traducción|nota|explicación",
    "fr": "traduction|remarque|explication",
    "it": "traduzione|nota|spiegazione",
    "ja": "翻訳|注|説明|訳",
    "ko": "번역|참고|설명",
    "ru": "перевод|примечание|пояснение|объяснение",
    "zh": "翻译|注意|解释|译文",
}
_LABELS = sorted({label for labels in LABELS_BY_LANGUAGE.values() for label in labels.split("|")})
_LABEL_LINE = re.compile(
    r"^\s*[*_#>\-]*\s*(?:" + "|".join(map(re.escape, _LABELS)) + r")\s*[*_]*\s*[:：]",
    re.IGNORECASE | re.MULTILINE,
)
_FENCE = re.compile(r"^\s*```", re.MULTILINE)


@dataclass(frozen=True)
class ParsedOutput:
    valid: bool
    translation: str  # the text after </think>, stripped ("" when invalid)
    reasoning: str  # the text inside the think block ("" when absent)
    reason: str  # why the gate failed ("" when valid)


def parse_output(completion: str) -> ParsedOutput:
    """Split a completion into reasoning and translation, checking the ExTrans format."""
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a string, got {type(completion).__name__}")
    text = completion.strip()
    if not text.startswith(OPEN):
        reason = "no <think> block" if OPEN not in text else "text before <think>"
        return _invalid(reason)
    n_open, n_close = text.count(OPEN), text.count(CLOSE)
    if n_close == 0:
        return _invalid("<think> block is not closed")
    if n_open > 1 or n_close > 1:
        return _invalid(f"{n_open} <think> and {n_close} </think> tags; exactly one block allowed")
    reasoning, _, translation = text[len(OPEN) :].partition(CLOSE)
    translation = translation.strip()
    if not translation:
        return _invalid("no translation after </think>")
    if _FENCE.search(translation):
        return _invalid("code fence after </think>")
    label = _LABEL_LINE.search(translation)
    if label:
        return _invalid(f"commentary after </think>: {label.group().strip()!r}")
    return ParsedOutput(True, translation, reasoning.strip(), "")


def extract_translation(completion: str) -> str:
    """The translation of a completion whatever its format: the text after the last
    `</think>` when there is one, the whole text otherwise (used for exemplars written by
    other models and for ungated metrics)."""
    if CLOSE in completion:
        completion = completion.rsplit(CLOSE, 1)[1]
    elif completion.lstrip().startswith(OPEN):  # unclosed reasoning: no translation
        return ""
    return completion.strip()


def _invalid(reason: str) -> ParsedOutput:
    return ParsedOutput(False, "", "", reason)
