"""Code-block extraction from model completions and program assembly.

A completion's code is the last fenced block (```python ... ```, ```py, or an unlabelled
```), or, when the completion was cut off inside a block, the rest after the opening
fence. A completion with no code block has no code: every test counts as failed (VeRPO
spec), unless `require_block=False`, which takes the whole completion as code.
"""

from __future__ import annotations

import re
from typing import Any

PYTHON_LANGS = {"", "python", "py", "python3", "py3"}


def code_blocks(text: str) -> list[tuple[str, str, bool]]:
    """Every fenced block as (language, code, closed), in order."""
    blocks: list[tuple[str, str, bool]] = []
    lang: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if lang is None:
            if stripped.startswith("```"):
                lang = stripped[3:].strip().split(" ")[0].lower() if stripped[3:].strip() else ""
                lines = []
        elif stripped == "```":
            blocks.append((lang, "\n".join(lines), True))
            lang = None
        else:
            lines.append(line)
    if lang is not None:
        blocks.append((lang, "\n".join(lines), False))
    return blocks


def extract_code(completion: str, require_block: bool = True) -> str | None:
    """The Python code of a completion, or None when it has none."""
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    blocks = [b for b in code_blocks(completion) if b[0] in PYTHON_LANGS and b[1].strip()]
    closed = [b for b in blocks if b[2]]
    if closed:
        return closed[-1][1].strip("\n") + "\n"
    if blocks:  # cut off inside the block
        return blocks[-1][1].strip("\n") + "\n"
    if require_block:
        return None
    return completion.strip("\n") + "\n" if completion.strip() else None


def build_program(code: str, meta: dict[str, Any]) -> str:
    """The program to test: the row's `code_prefix` (imports the prompt relies on), then the
    code. When the row names an `entry_point` that the code does not define, the code is
    taken as the continuation of the row's `code_prompt` (HumanEval body completion)."""
    prefix = meta.get("code_prefix", "")
    entry = meta.get("entry_point")
    if entry and meta.get("code_prompt") and not re.search(rf"def\s+{re.escape(entry)}\s*\(", code):
        code = meta["code_prompt"] + code
    return f"{prefix}\n{code}" if prefix else code
