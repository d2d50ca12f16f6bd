"""Prompts as token ids: plain text through the tokenizer, chat messages through the
tokenizer's chat template (with the assistant turn opened, so the completion is the reply)."""

from __future__ import annotations

from typing import Any


class ChatTemplateError(ValueError):
    """A task gives chat messages but the tokenizer has no chat template to render them."""


def prompt_ids(tokenizer: Any, prompt: Any, task: str) -> list[int]:
    """Token ids of one prompt: `str` as text, a list of {"role", "content"} messages through
    `tokenizer.apply_chat_template(..., add_generation_prompt=True)`."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ChatTemplateError(
            f"task {task!r} gives chat prompts (a list of messages), but the tokenizer of "
            f"{name!r} has no chat template: use an instruct model that has one (e.g. "
            "`model: smollm2-135m-instruct`), set `tokenizer.chat_template`, or a task "
            "with text prompts"
        )
    ids = tokenizer.apply_chat_template(
        prompt, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return list(ids)
