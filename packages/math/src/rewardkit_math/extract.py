"""Final-answer extraction from a math completion.

Three conventions, tried in this order (the spec, section 1):

1. the last `\\boxed{...}` (or `\\fbox{...}`), with nested braces matched;
2. the last `#### N` line (GSM8K);
3. the last "The answer is X" (also "final answer is", "Answer:").

Pure string work, linear in the length of the text, so it can run in the calling thread
before anything slow (sympy) is started. Never raises on any input string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"^[ \t]*####[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_ANSWER_IS = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*:|answer\s*:)\s*:?\s*(.+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Extraction:
    """The answer text found (None when nothing was found) and how, or why not."""

    answer: str | None
    method: str  # "boxed" | "hashes" | "answer_is" | "none" | "unbalanced_boxed"


def _closing_braces(text: str) -> dict[int, int]:
    """Map the index of every `{` that is closed to the index of its `}` (one pass).

    Escaped braces (`\\{`, `\\}`) are literal set braces in LaTeX and do not count.
    """
    closing: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            closing[stack.pop()] = i
        i += 1
    return closing


def last_boxed(text: str) -> Extraction:
    """Content of the last `\\boxed{...}` whose braces close."""
    opens = [m.end() - 1 for m in _BOXED.finditer(text)]
    if not opens:
        return Extraction(None, "none")
    closing = _closing_braces(text)
    for brace in reversed(opens):
        if brace in closing:
            return Extraction(text[brace + 1 : closing[brace]].strip(), "boxed")
    return Extraction(None, "unbalanced_boxed")


# a math span at the start of a sentence answer: $...$, $$...$$, \(...\), \[...\]
_LEADING_MATH = re.compile(r"(\$\$|\$|\\\(|\\\[)(.+?)(\$\$|\$|\\\)|\\\])")
_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
# a plain number at the start: 72, -3.5, 1,000, 3/4, 50%
_LEADING_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")
_UNIT_WORDS = re.compile(r"(?:\s+[A-Za-z][A-Za-z'-]*)+")  # "dollars", "of the cake"


def _clean_sentence_answer(raw: str) -> str:
    """The answer of "The answer is X": its first line without the final full stop; a math
    span or a number followed only by words (a unit: "$72$ dollars", "12 apples") is cut
    to the span's content or the number, so the unit does not make a right answer wrong."""
    answer = raw.strip()
    answer = answer.split("\n", 1)[0].strip()
    answer = answer.rstrip(".").strip()
    math = _LEADING_MATH.match(answer)
    if math and _CLOSER[math.group(1)] == math.group(3):
        rest = answer[math.end() :]
        if not rest or _UNIT_WORDS.fullmatch(rest):
            return math.group(2).strip()
    number = _LEADING_NUMBER.match(answer)
    if number and _UNIT_WORDS.fullmatch(answer[number.end() :]):
        return number.group(0)
    return answer


def extract_answer(text: str) -> Extraction:
    """The final answer of a completion by the first convention that finds one."""
    if not isinstance(text, str):
        raise TypeError(f"extract_answer needs a str, got {type(text).__name__}")
    boxed = last_boxed(text)
    if boxed.answer is not None:
        return boxed
    hashes = _HASHES.findall(text)
    if hashes:
        return Extraction(hashes[-1].replace(",", "").strip(), "hashes")
    said = _ANSWER_IS.findall(text)
    if said:
        answer = _clean_sentence_answer(said[-1])
        if answer:
            return Extraction(answer, "answer_is")
    return boxed  # "none" or "unbalanced_boxed": the reason for the failure
