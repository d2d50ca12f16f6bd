"""Chat models behind one small interface: an OpenAI-compatible endpoint, or a local
transformers model. Used by the LLM judge and by exemplar generation.

`await chat.complete(messages)` returns the assistant's text. The endpoint client uses
only the standard library (urllib, run in a worker thread), so it needs nothing beyond
what rewardkit installs; requests to one endpoint are limited to `max_concurrency` at a
time, and transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried
with exponential back-off before a `ChatError` naming the URL is raised.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

Messages = list[dict[str, str]]


class ChatError(RuntimeError):
    """A chat model could not be reached or answered with something unusable."""


class ChatModel(Protocol):
    name: str

    async def complete(self, messages: Messages) -> str: ...


class OpenAIChat:
    """POST {url}/chat/completions of an OpenAI-compatible server (vLLM, SGLang, llama.cpp,
    TGI ...). `url` is the API base (e.g. http://127.0.0.1:8000/v1) or the full
    /chat/completions URL."""

    def __init__(
        self,
        url: str,
        model: str = "default",
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 512,
        timeout: float = 60.0,
        max_concurrency: int = 8,
        http_retries: int = 2,
        backoff: float = 0.5,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"chat endpoint url must start with http:// or https://, got {url!r}")
        if max_concurrency < 1 or http_retries < 0:
            raise ValueError("max_concurrency must be >= 1 and http_retries >= 0")
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.name = model
        self.api_key = api_key
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.http_retries, self.backoff = http_retries, backoff
        self._slots = threading.BoundedSemaphore(max_concurrency)

    async def complete(self, messages: Messages) -> str:
        return await asyncio.to_thread(self.complete_sync, messages)

    def complete_sync(self, messages: Messages) -> str:
        body = json.dumps(
            {
                "model": self.name,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.http_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, body, headers, method="POST")
            try:
                with self._slots, urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                last = f"HTTP {exc.code}: {detail}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error does not get better by asking again
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                continue
            except json.JSONDecodeError as exc:
                raise ChatError(f"{self.url} answered with invalid JSON: {exc}") from exc
            return _message_text(payload, self.url)
        raise ChatError(f"chat request to {self.url} failed ({last})")


def _message_text(payload: Any, url: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ChatError(
            f"{url} answered without choices[0].message.content: {str(payload)[:200]}"
        ) from None
    if not isinstance(content, str):
        raise ChatError(f"{url} answered with non-text content: {content!r}")
    return content


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
