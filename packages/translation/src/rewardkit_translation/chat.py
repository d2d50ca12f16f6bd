"""Chat models behind one small interface: an OpenAI-compatible endpoint, or a local
transformers model. Used by the LLM judge and by exemplar generation.

`await chat.complete(messages)` returns the assistant's text. The endpoint client is
rewardkit's generic one (`rewardkit.llm_client.OpenAIChat`: bounded concurrency, a
timeout per attempt, retries with back-off, then a `ChatError` naming the URL); the local
model is `TransformersChat` below.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from rewardkit.llm_client import ChatError, ChatModel, Messages, OpenAIChat

__all__ = ["ChatError", "ChatModel", "Messages", "OpenAIChat", "TransformersChat", "build_chat"]


class TransformersChat:
    """A local causal LM with a chat template, greedy decoding (one request at a time)."""

    def __init__(
        self,
        path: str,
        max_new_tokens: int = 512,
        device: str | None = None,
        dtype: str = "auto",
        model: Any = None,
        tokenizer: Any = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = str(path)
        self.max_new_tokens = max_new_tokens
        if model is None:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            model = model.to(device)
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"{path}: the tokenizer has no chat template")
        self.model, self.tokenizer = model.eval(), tokenizer
        self._lock = threading.Lock()

    async def complete(self, messages: Messages) -> str:
        return await asyncio.to_thread(self.complete_sync, messages)

    def complete_sync(self, messages: Messages) -> str:
        import torch

        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        device = next(self.model.parameters()).device
        ids = {k: v.to(device) for k, v in ids.items()}
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        with self._lock, torch.no_grad():
            out = self.model.generate(
                **ids, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad
            )
        new = out[0, ids["input_ids"].shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True)


def build_chat(options: dict[str, Any]) -> ChatModel:
    """{"url": ..., "model": ...} for an endpoint, {"path": ...} for a local model."""
    options = dict(options)
    if "url" in options and "path" in options:
        raise ValueError("give a chat model either `url` (an endpoint) or `path` (local), not both")
    if "url" in options:
        return OpenAIChat(**options)
    if "path" in options:
        return TransformersChat(**options)
    raise ValueError(
        f"a chat model needs `url` (OpenAI-compatible endpoint) or `path`, got {options}"
    )
