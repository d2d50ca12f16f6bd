"""`rm.judge`: a generative, principle-following judge as a reward (RewardAnything, RM-R1).

A chat model behind an OpenAI-compatible endpoint (rewardkit.llm_client) reads a
principle (the config's `principle`, or a per-prompt one from `meta[principle_key]`),
the prompt and one response, may reason, and must end its answer with exactly one
`<score>N</score>`, N an integer from `low` to `high`. The score is parsed strictly:
no tag, several tags, a non-integer or a number out of range is malformed, and the
question is asked again with a reminder, up to `max_retries` times. The reward is
(N − low) / (high − low) in [0, 1]; `info` keeps N and the answer's last 200 characters.

Bad output and a bad endpoint are never silent and never hang a step:
- a judgement still malformed after the retries scores `malformed_score` when it is set
  (counted in `stats()` and marked in `info`), else it is an error;
- each request is bounded by the client (`timeout` per attempt, `http_retries` retries
  with back-off, then a `ChatError` naming the URL): an endpoint that is down or hangs
  fails the batch with that error after at most `client.max_seconds`, which the scorer
  raises or counts (`on_reward_error`).
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

from rewardkit.llm_client import ChatError, Messages, OpenAIChat, ask_until_parsed
from rewardkit.types import RewardOutput, Sample

SYSTEM_PROMPT = (
    "You are a careful evaluator. You judge a response only by how well it follows the "
    "principle you are given, not by your own preferences."
)

USER_PROMPT = """Principle:
{principle}

Prompt:
{prompt}

Response:
{response}

Think briefly about how well the response follows the principle. Then end your answer
with exactly one line `<score>N</score>`, where N is an integer from {low} (ignores the
principle) to {high} (follows it fully)."""

REMINDER = (
    "Your answer did not end with exactly one <score>N</score> with an integer N from "
    "{low} to {high}. Reply with that one line only."
)

DEFAULT_PRINCIPLE = "The response answers the prompt correctly, completely and concisely."
_SCORE = re.compile(r"<score>\s*([^<]*?)\s*</score>", re.IGNORECASE)


class JudgeError(RuntimeError):
    """The judge gave no usable score (malformed after the retries, or unreachable)."""


def parse_score(text: str, low: int, high: int) -> int | None:
    """N when `text` holds exactly one <score>N</score> with an integer N in [low, high]."""
    found = _SCORE.findall(text or "")
    if len(found) != 1 or not re.fullmatch(r"[+-]?\d+", found[0]):
        return None
    value = int(found[0])
    return value if low <= value <= high else None


def prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


class RMJudge:
    """Async batch reward: one judgement per completion, all requests of a batch at once
    (the client bounds the concurrency)."""

    def __init__(
        self,
        url: str,
        model: str = "default",
        principle: str = DEFAULT_PRINCIPLE,
        principle_key: str | None = None,
        low: int = 1,
        high: int = 10,
        max_retries: int = 2,
        malformed_score: float | None = None,
        timeout: float = 30.0,
        http_retries: int = 2,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        max_tokens: int = 512,
        temperature: float = 0.0,
        api_key: str | None = None,
    ):
        if not high > low:
            raise ValueError(f"rm.judge: need high > low, got low={low}, high={high}")
        if max_retries < 0:
            raise ValueError(f"rm.judge: max_retries must be >= 0, got {max_retries}")
        self.chat = OpenAIChat(
            url,
            model,
            api_key,
            temperature,
            max_tokens,
            timeout,
            max_concurrency,
            http_retries,
            backoff,
        )
        self.principle, self.principle_key = principle, principle_key
        self.low, self.high = low, high
        self.max_retries = max_retries
        self.malformed_score = malformed_score
        self.name = f"rm.judge({model})"
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("judgements", "calls", "retries", "malformed"), 0)

    def messages(self, sample: Sample) -> Messages:
        principle = self.principle
        if self.principle_key is not None:
            if self.principle_key not in sample.meta:
                raise KeyError(
                    f"rm.judge: sample meta has no principle {self.principle_key!r} "
                    f"(keys: {sorted(sample.meta)})"
                )
            principle = str(sample.meta[self.principle_key])
        user = USER_PROMPT.format(
            principle=principle,
            prompt=prompt_text(sample.prompt),
            response=sample.completion,
            low=self.low,
            high=self.high,
        )
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    async def judge_one(self, sample: Sample) -> RewardOutput:
        try:
            score, answers = await ask_until_parsed(
                self.chat,
                self.messages(sample),
                lambda answer: parse_score(answer, self.low, self.high),
                REMINDER.format(low=self.low, high=self.high),
                self.max_retries,
                self._count,
            )
        except ChatError as exc:
            raise JudgeError(f"rm.judge: {exc}") from exc
        answer = answers[-1]
        if score is not None:
            self._count("judgements")
            value = (score - self.low) / (self.high - self.low)
            return RewardOutput(value, info={"judge_score": score, "answer": answer[-200:]})
        self._count("malformed")
        if self.malformed_score is None:
            raise JudgeError(
                f"rm.judge: no <score>N</score> ({self.low}..{self.high}) after "
                f"{self.max_retries + 1} attempts; last answer: {answer[-200:]!r} "
                "(set malformed_score to score such answers instead)"
            )
        return RewardOutput(
            float(self.malformed_score), info={"malformed": True, "answer": answer[-200:]}
        )

    async def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        return list(await asyncio.gather(*(self.judge_one(s) for s in samples)))

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {f"judge/{k}": float(v) for k, v in self._counts.items()}
