"""Parsing the ToolRL answer format and the ToolRL system prompt.

ToolRL ("ToolRL: Reward is All Tool Learning Needs", Qian et al., arXiv 2504.13958)
trains the policy to answer in this layout, `<tool_call>` and `<response>` each optional:

    <think> ... </think>
    <tool_call>
    {"name": "...", "parameters": {...}}        one JSON object per line
    </tool_call>
    <response> ... </response>

This module finds the blocks, parses the tool-call lines into `{"name", "parameters"}`
dicts, and builds the system prompt that shows the policy its tools and this format.
"""

from __future__ import annotations

import json
import re
from typing import Any

TAGS = ("think", "tool_call", "response")


class MalformedToolCall(ValueError):
    """A `<tool_call>` block that cannot be read: missing tags, a non-JSON line, or a call
    without a string `name` and a dict `parameters`."""


def has_tag(text: str, tag: str) -> bool:
    return f"<{tag}>" in text


def block(text: str, tag: str) -> str | None:
    """The content of the first `<tag>...</tag>` block, or None when there is none."""
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return None if end < 0 else text[start:end]


def parse_call_line(line: str, where: str = "tool call") -> dict[str, Any]:
    """One line of a tool-call block -> {"name": str, "parameters": dict}."""
    try:
        call = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedToolCall(f"{where}: line is not JSON ({exc}): {line[:80]!r}") from None
    if not isinstance(call, dict):
        raise MalformedToolCall(f"{where}: expected a JSON object, got {type(call).__name__}")
    if "name" not in call or "parameters" not in call:
        raise MalformedToolCall(
            f"{where}: a call needs 'name' and 'parameters', got {sorted(call)}"
        )
    if not isinstance(call["name"], str):
        raise MalformedToolCall(f"{where}: 'name' must be a string, got {call['name']!r}")
    if not isinstance(call["parameters"], dict):
        raise MalformedToolCall(
            f"{where}: 'parameters' must be an object, got {type(call['parameters']).__name__}"
        )
    return {"name": call["name"], "parameters": call["parameters"]}


def parse_tool_calls(text: str, where: str = "completion") -> list[dict[str, Any]]:
    """The calls of the first `<tool_call>` block of `text`, one JSON object per line
    (blank lines are skipped). Raises MalformedToolCall when the block is missing its
    opening or closing tag, or a line is not a well-formed call."""
    content = block(text, "tool_call")
    if content is None:
        missing = "<tool_call>" if "<tool_call>" not in text else "</tool_call>"
        raise MalformedToolCall(f"{where}: no complete tool-call block ({missing} missing)")
    lines = [line.strip() for line in content.strip().split("\n")]
    return [
        parse_call_line(line, f"{where}, tool call line {i + 1}")
        for i, line in enumerate(lines)
        if line
    ]


def format_calls(calls: list[dict[str, Any]]) -> str:
    """Calls -> the tool-call block that `parse_tool_calls` reads back."""
    lines = [json.dumps({"name": c["name"], "parameters": c["parameters"]}) for c in calls]
    return "<tool_call>\n" + "\n".join(lines) + "\n</tool_call>"


def answer_text(
    calls: list[dict[str, Any]] | None, response: str | None = None, think: str | None = None
) -> str:
    """A full answer in ToolRL layout (think first when given, then calls, then response)."""
    parts = []
    if think is not None:
        parts.append(f"<think>{think}</think>")
    if calls:
        parts.append(format_calls(calls))
    if response is not None:
        parts.append(f"<response>{response}</response>")
    if not parts:
        raise ValueError("an answer needs at least a think, a tool call or a response")
    return "\n".join(parts)


# -- the system prompt ---------------------------------------------------------------------

SYSTEM_PROMPT = """You are an assistant that solves the user's task, calling tools when they help.

Tools you may call (one JSON schema per line):
{tools}

Answer in this layout:
<think> your reasoning </think>
<tool_call>
{{"name": "tool name", "parameters": {{"argument name": "argument value"}}}}
</tool_call>
<response> your reply to the user </response>

Rules:
1. Always start with <think>. Then give <tool_call>, <response>, or both, in that order.
2. Put each tool call on its own line inside one <tool_call> block, as a JSON object with a
   "name" and a "parameters" object (empty when the tool takes none); several calls may be
   made at once.
3. Call only the tools listed above. When none of them fits, do not call any: answer in
   <response>."""

_NAME = re.compile(r"\S+")


def toolrl_system_prompt(tools: list[dict[str, Any]]) -> str:
    """The ToolRL system prompt (paper, appendix: tools listed as JSON, then the output
    format and its rules) for a list of tool schemas, each a dict with a string `name`."""
    if not isinstance(tools, list):
        raise TypeError(f"tools must be a list of schemas, got {type(tools).__name__}")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise TypeError(f"tools[{i}] must be a dict schema, got {type(tool).__name__}")
        name = tool.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"tools[{i}] needs a non-empty 'name' without spaces, got {name!r}")
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools) or "(none)"
    return SYSTEM_PROMPT.format(tools=listed)
