"""The Themis inference loop (arXiv 2310.01045, §3.2): generate → call tool → observe.

Generation stops at `<start_observation>`; the Action / Action Input just written are
parsed, the tool is called and ` Observation: <output>` appended, and generation goes on.
`<start_work>` (or an Action `Finished`, or a stop without a call) ends tool use; after
`max_calls` calls the loop writes `<start_work> Work:` itself. Then the rationale is
generated up to end-of-sequence. A failing, unknown or unparsable tool call becomes an
`Error: ...` observation: the loop never raises because of what the model wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from rewardkit_tools.themis.model import tokenize
from rewardkit_tools.themis.tools import Tool
from rewardkit_tools.themis.trace import (
    ASSISTANT,
    FINISHED,
    MAX_CALLS,
    SPECIAL_TOKENS,
    START_OBSERVATION,
    START_WORK,
    ToolStep,
    Trace,
    TraceParseError,
    observation_text,
    parse_call,
    user_prefix,
)

Generate = Callable[[str], str]  # text so far -> continuation (ends at a stop marker or not)
MAX_OBSERVATION = 400


def call_tool(toolbox: dict[str, Tool], step: ToolStep) -> str:
    """The observation for one call; errors are described, never raised."""
    tool = toolbox.get(step.action)
    if tool is None:
        return f"Error: unknown tool {step.action!r}; available: {', '.join(toolbox)}"
    try:
        out = str(tool(step.action_input))
    except Exception as exc:  # noqa: BLE001 - a tool failure is an observation
        out = f"Error: {type(exc).__name__}: {exc}"
    for token in SPECIAL_TOKENS:  # an observation must not fake trace structure
        out = out.replace(token, "")
    return out[:MAX_OBSERVATION]


def tool_loop(
    generate: Generate,
    question: str,
    answer: str,
    toolbox: dict[str, Tool],
    eos: str,
    max_calls: int = MAX_CALLS,
) -> tuple[str, Trace]:
    """Run the loop for one (question, answer); returns the full text and its trace."""
    if max_calls < 0:
        raise ValueError(f"max_calls must be >= 0, got {max_calls}")
    text = user_prefix(question) + answer + ASSISTANT
    trace = Trace()
    working = False
    while len(trace.steps) < max_calls:
        chunk = generate(text)
        before_work, has_work, after_work = chunk.partition(START_WORK)
        if has_work or START_OBSERVATION not in chunk or eos in chunk.split(START_OBSERVATION)[0]:
            # the model ended tool use (or stopped without a call)
            text += before_work.split(eos)[0]
            if has_work:
                rationale, ended, _ = after_work.partition(eos)
                text += START_WORK + rationale + ended
                working = True
            break
        call = chunk[: chunk.index(START_OBSERVATION) + len(START_OBSERVATION)]
        text += call
        try:
            step = parse_call(call)
        except TraceParseError as exc:
            step = ToolStep("", "", "", f"Error: {exc}")
        else:
            if step.action == FINISHED:
                break
            step.observation = call_tool(toolbox, step)
        trace.steps.append(step)
        text += observation_text(step.observation)
    if not working:
        text += f"{START_WORK} Work:"
    if not text.endswith(eos):  # the rationale ends at end-of-sequence or any trace token
        text += re.split("|".join(map(re.escape, [eos, *SPECIAL_TOKENS])), generate(text))[0]
        text += eos
    trace.rationale = (
        text.rpartition(START_WORK)[2].removeprefix(" Work:").removesuffix(eos).strip()
    )
    return text, trace


class HFGenerate:
    """Greedy continuation with a transformers causal LM, stopping at end-of-sequence or
    `<start_observation>` (both single tokens), within the model's context length. The
    context is `model.tokenize(text)`: BOS first, as in training and scoring."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 128):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.stop_ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(START_OBSERVATION)]
        self.limit = getattr(model.config, "max_position_embeddings", 10**9)

    @torch.no_grad()
    def __call__(self, text: str) -> str:
        ids = torch.tensor([tokenize(self.tokenizer, text)])  # as in training and scoring
        budget = min(self.max_new_tokens, self.limit - ids.shape[1])
        if budget <= 0:
            return ""
        ids = ids.to(self.model.device)
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=budget,
            do_sample=False,
            eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=False)
