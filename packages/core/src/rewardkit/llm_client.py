"""A chat client for OpenAI-compatible HTTP endpoints (vLLM, SGLang, llama.cpp, TGI ...).

Used by the LLM judges of the domain packages (translation's pairwise judge, rm.judge)
and by exemplar generation. `await chat.complete(messages)` returns the assistant's text.
Only the standard library is used (urllib, run in a worker thread), so it needs nothing
beyond what rewardkit installs.

Bounded by construction: at most `max_concurrency` requests to one endpoint at a time;
each attempt ends after `timeout` seconds (connecting, and reading the whole answer:
an endpoint that trickles bytes is cut off too); transient failures (connection errors,
timeouts, HTTP 429 and 5xx) are retried `http_retries` times with exponential back-off,
then a `ChatError` naming the URL and the last failure is raised. A client error (other
4xx) or an answer that is not a chat completion is not retried.

`ask_until_parsed` is the judges' loop over that: parse the answer, and ask again with a
reminder when it cannot be parsed (the HTTP retries are the client's, below it).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

Messages = list[dict[str, str]]
Parsed = TypeVar("Parsed")


class ChatError(RuntimeError):
    """A chat model could not be reached or answered with something unusable."""


class ChatModel(Protocol):
    name: str

    async def complete(self, messages: Messages) -> str: ...


class OpenAIChat:
    """POST {url}/chat/completions of an OpenAI-compatible server. `url` is the API base
    (e.g. http://127.0.0.1:8000/v1) or the full /chat/completions URL."""

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
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"chat endpoint url must start with http:// or https://, got {url!r}")
        if max_concurrency < 1 or http_retries < 0:
            raise ValueError("max_concurrency must be >= 1 and http_retries >= 0")
        if timeout <= 0 or backoff < 0:
            raise ValueError(f"timeout must be > 0 and backoff >= 0, got {timeout}, {backoff}")
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.name = model
        self.api_key = api_key
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.http_retries, self.backoff = http_retries, backoff
        self._slots = threading.BoundedSemaphore(max_concurrency)

    @property
    def max_seconds(self) -> float:
        """The longest one `complete` call can take: every attempt plus the back-offs
        (waiting for a free concurrency slot aside)."""
        waits = sum(self.backoff * 2**k for k in range(self.http_retries))
        return (self.http_retries + 1) * self.timeout + waits

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
                with self._slots:
                    raw = _post(request, self.timeout)
                payload = json.loads(raw.decode())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:200]
                last = f"HTTP {exc.code}: {detail}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error does not get better by asking again
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                continue
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ChatError(f"{self.url} answered with invalid JSON: {exc}") from exc
            return message_text(payload, self.url)
        attempts = self.http_retries + 1
        raise ChatError(f"chat request to {self.url} failed after {attempts} attempts ({last})")


def _post(request: urllib.request.Request, timeout: float) -> bytes:
    """The answer's body, read within `timeout` seconds in all (urllib's own timeout
    bounds each socket operation, not the whole answer)."""
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        chunks = []
        while chunk := resp.read1(1 << 16):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the answer took more than {timeout}s to arrive")
        return b"".join(chunks)


def message_text(payload: Any, url: str) -> str:
    """choices[0].message.content of a chat completion, else a ChatError."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ChatError(
            f"{url} answered without choices[0].message.content: {str(payload)[:200]}"
        ) from None
    if not isinstance(content, str):
        raise ChatError(f"{url} answered with non-text content: {content!r}")
    return content


async def ask_until_parsed(
    chat: ChatModel,
    messages: Messages,
    parse: Callable[[str], Parsed | None],
    reminder: str,
    max_retries: int,
    count: Callable[[str], None] = lambda key: None,
) -> tuple[Parsed | None, list[str]]:
    """Ask `chat`; when `parse` finds nothing usable in the answer (None), ask again with the
    answer and `reminder` appended to the conversation, at most `max_retries` more times.
    Returns (the parsed answer or None, every raw answer). `count("calls")` is called for
    each answer and `count("retries")` for each question asked again. A ChatError of the
    client (endpoint down after its own retries) propagates."""
    answers: list[str] = []
    for attempt in range(max_retries + 1):
        answer = await chat.complete(messages)
        answers.append(answer)
        count("calls")
        parsed = parse(answer)
        if parsed is not None:
            return parsed, answers
        if attempt < max_retries:
            count("retries")
            messages = [
                *messages,
                {"role": "assistant", "content": answer},
                {"role": "user", "content": reminder},
            ]
    return None, answers
