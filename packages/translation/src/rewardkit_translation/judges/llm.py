"""The LLM judge: a chat model compares the policy's translation with the exemplar.

ExTrans (arXiv 2505.12996) asks a strong model which of two translations is better. To
control position bias the pair is asked in both orders (policy first, then exemplar
first); when the two answers disagree the outcome is equal. The verdict must be given as
exactly one of `[[A]]`, `[[B]]`, `[[TIE]]` (MT-Bench style); any other answer is
unparseable and the question is asked again (with a reminder) up to `max_retries` times.
A pair that still has an unparseable order gets `outcome=None, unparseable=True`, and is
counted in `stats()` (the reward decides what it scores and reports it per sample).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

from rewardkit.llm_client import ask_until_parsed
from rewardkit_translation.chat import ChatModel, Messages, build_chat
from rewardkit_translation.judges.base import Judgement, JudgeRequest, Outcome
from rewardkit_translation.languages import LANGUAGES

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are an expert evaluator of translations. You judge strictly and fairly."

USER_PROMPT = """Compare two {target} translations of the same {source_lang} text.
Judge adequacy first (the meaning is fully preserved, nothing added or left out), then fluency.
The order in which the translations are shown does not matter.

Source text:
{source}
{reference_block}
[Translation A]
{a}

[Translation B]
{b}

You may reason briefly. End your answer with exactly one verdict: [[A]] if translation A
is better, [[B]] if translation B is better, or [[TIE]] if they are equally good."""

REMINDER = (
    "Your answer did not contain exactly one verdict. Reply with exactly one of "
    "[[A]], [[B]] or [[TIE]] and nothing else."
)

_VERDICT = re.compile(r"\[\[\s*(A|B|TIE)\s*\]\]", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """ "A", "B" or "TIE" when `text` holds exactly one verdict token, else None."""
    found = _VERDICT.findall(text or "")
    if len(found) != 1:
        return None
    return found[0].upper()


def policy_outcome(verdict: str, policy_is_a: bool) -> Outcome:
    """The policy's outcome from a verdict given with the policy shown as A or as B."""
    if verdict == "TIE":
        return Outcome.EQUAL
    policy_won = (verdict == "A") == policy_is_a
    return Outcome.BETTER if policy_won else Outcome.WORSE


def combine_orders(first: Outcome | None, second: Outcome | None) -> tuple[Outcome | None, bool]:
    """(outcome, disagreed): both orders must agree, a disagreement is equal; an
    unparseable order makes the pair unparseable (None)."""
    if first is None or second is None:
        return None, False
    if first == second:
        return first, False
    return Outcome.EQUAL, True


class LLMJudge:
    scores_quality = False  # ranks only

    def __init__(self, chat: ChatModel, max_retries: int = 2, use_reference: bool = True):
        if max_retries < 0:
            raise ValueError(f"LLM judge: max_retries must be >= 0, got {max_retries}")
        self.chat = chat
        self.max_retries = max_retries
        self.use_reference = use_reference
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            (
                "pairs",
                "calls",
                "retries",
                "unparseable_answers",
                "unparseable_pairs",
                "disagreements",
            ),
            0,
        )

    @classmethod
    def from_options(
        cls, max_retries: int = 2, use_reference: bool = True, **chat_options: Any
    ) -> LLMJudge:
        """Options of the chat model (`url` + `model`, or `path`) plus the judge's own."""
        return cls(build_chat(chat_options), max_retries, use_reference)

    def messages(self, r: JudgeRequest, a: str, b: str) -> Messages:
        reference_block = ""
        if self.use_reference and r.reference:
            reference_block = f"\nA reference translation, for guidance:\n{r.reference}\n"
        user = USER_PROMPT.format(
            target=LANGUAGES.get(r.target_lang or "", "target-language"),
            source_lang=LANGUAGES.get(r.source_lang or "", "source-language"),
            source=r.source,
            reference_block=reference_block,
            a=a,
            b=b,
        )
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    async def ask(self, messages: Messages) -> tuple[str | None, list[str]]:
        """The verdict (None if still unparseable after the retries) and the raw answers."""
        verdict, answers = await ask_until_parsed(
            self.chat, messages, parse_verdict, REMINDER, self.max_retries, self._count
        )
        if verdict is None:
            self._count("unparseable_answers")
        return verdict, answers

    async def judge_one(self, r: JudgeRequest) -> Judgement:
        (v1, raw1), (v2, raw2) = await asyncio.gather(
            self.ask(self.messages(r, r.translation, r.exemplar)),  # policy is A
            self.ask(self.messages(r, r.exemplar, r.translation)),  # policy is B
        )
        first = None if v1 is None else policy_outcome(v1, policy_is_a=True)
        second = None if v2 is None else policy_outcome(v2, policy_is_a=False)
        outcome, disagreed = combine_orders(first, second)
        self._count("pairs")
        if disagreed:
            self._count("disagreements")
        info = {"verdicts": [v1, v2], "disagreed": disagreed}
        if outcome is None:
            self._count("unparseable_pairs")
            info["unparseable_answers"] = [raw1[-1][:200], raw2[-1][:200]]
            log.warning(
                "LLM judge: unparseable verdict for source %r (%d unparseable pairs so far)",
                r.source[:60],
                self._counts["unparseable_pairs"],
            )
        return Judgement(outcome, unparseable=outcome is None, info=info)

    async def judge(self, requests: list[JudgeRequest]) -> list[Judgement]:
        return list(await asyncio.gather(*(self.judge_one(r) for r in requests)))

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def stats(self) -> dict[str, float]:
        with self._lock:
            return {f"judge/{k}": float(v) for k, v in self._counts.items()}
