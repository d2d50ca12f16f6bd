"""Prompt templates for any direction among the 11 languages.

A template is a `str.format` string with the placeholders {source}, {source_lang},
{target_lang}, {source_name} and {target_name} (language codes and English names). The
built-in "think" template asks for the ExTrans output format (reasoning in <think>
</think>, then the translation only); "plain" asks for the translation only (used to
have a strong model write exemplars).
"""

from __future__ import annotations

import string
from typing import Any

from rewardkit_translation.languages import check_language, language_name

TEMPLATES: dict[str, str] = {
    "think": (
        "Translate the following {source_name} text into {target_name}. First think about "
        "the translation inside <think> </think>, then write only the {target_name} "
        "translation after </think>, with no notes or explanations.\n\n{source}"
    ),
    "plain": (
        "Translate the following {source_name} text into {target_name}. Write only the "
        "{target_name} translation, with no notes or explanations.\n\n{source}"
    ),
}

PLACEHOLDERS = frozenset({"source", "source_lang", "target_lang", "source_name", "target_name"})


def resolve_template(template: str) -> str:
    """A built-in template's text by name, or a custom template checked for placeholders."""
    text = TEMPLATES.get(template, template)
    fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    unknown = fields - PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"prompt template has unknown placeholder(s) {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(PLACEHOLDERS))}"
        )
    if "source" not in fields:
        raise ValueError(
            f"prompt template {template[:60]!r} is neither a built-in "
            f"({', '.join(TEMPLATES)}) nor a template with a {{source}} placeholder"
        )
    return text


def render(template: str, row: dict[str, Any]) -> str:
    """Fill a template with a row's source text and its language pair."""
    src = check_language(row["source_lang"], "source_lang")
    tgt = check_language(row["target_lang"], "target_lang")
    return resolve_template(template).format(
        source=row["source"],
        source_lang=src,
        target_lang=tgt,
        source_name=language_name(src),
        target_name=language_name(tgt),
    )


def chat_messages(template: str, row: dict[str, Any], system: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": render(template, row)}]
