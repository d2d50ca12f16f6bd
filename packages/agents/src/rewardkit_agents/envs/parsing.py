"""Turning the policy's action text into one of an environment's discrete actions.

Accepted forms, tried in this order (case and surrounding whitespace ignored):

1. an explicit tag ``<action>up</action>`` (the last one wins when several are written);
2. a line ``Action: up``  (the last such line wins);
3. the whole text is a single action word, e.g. ``up`` or ``Up.``.

Anything else is invalid: the environment feeds the reason back as its observation and
counts it (see `rewardkit_agents.envs.base.TextEnv`). Free text that merely *mentions* an
action ("I will not go up") is deliberately not accepted, so that the policy has to
commit to exactly one action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_TAG = re.compile(r"<action>\s*(.*?)\s*</action>", re.IGNORECASE | re.DOTALL)
_LINE = re.compile(r"^\s*action\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STRIP = " \t\r\n.!'\"`*"


@dataclass(frozen=True)
class ParsedAction:
    """The result of parsing: the canonical action name, or None with the reason."""

    action: str | None
    error: str = ""

    @property
    def valid(self) -> bool:
        return self.action is not None


def committed_text(text: str) -> str:
    """The part of `text` that states the action: the last <action> tag, else the last
    `Action:` line, else the whole text."""
    tags = _TAG.findall(text)
    if tags:
        return tags[-1]
    lines = _LINE.findall(text)
    return lines[-1] if lines else text


def parse_action(
    text: str, actions: Sequence[str], aliases: Mapping[str, str] | None = None
) -> ParsedAction:
    """Parse `text` into one of `actions` (canonical names, lower case).

    `aliases` maps extra words to canonical names (e.g. ``{"north": "up"}``).
    """
    if not isinstance(text, str):
        raise TypeError(f"an action must be text, got {type(text).__name__}")
    vocabulary = {a.lower(): a for a in actions}
    for word, target in (aliases or {}).items():
        if target not in actions:
            raise ValueError(f"alias {word!r} points to {target!r}, which is not an action")
        vocabulary[word.lower()] = target

    word = " ".join(committed_text(text).strip(_STRIP).lower().split())
    if word in vocabulary:
        return ParsedAction(vocabulary[word])
    shown = word if len(word) <= 40 else word[:37] + "..."
    if not word:
        reason = "empty action"
    else:
        reason = f"unknown action {shown!r}"
    return ParsedAction(None, f"{reason}; answer with one of: {', '.join(actions)}")
