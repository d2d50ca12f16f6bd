"""The Themis trace format (arXiv 2310.01045, §3, Fig. 2) and its parser.

    ### USER:
    Question: <q>
    Answer: <a>
    ### ASSISTANT:
    <start_tool> Thought: ...
    Action: <tool name>
    Action Input: <arguments>
    <start_observation> Observation: <tool output>
    ... (up to 3 tool calls)
    <start_work> Work: <rationale></s>

`<start_tool>`, `<start_observation>` and `<start_work>` are special tokens added to the
tokenizer; `</s>` is the tokenizer's end-of-sequence token. `segments` cuts a rendered
example into labelled pieces (prompt, answer, tool call, observation, rationale) from
which the training masks are built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

START_TOOL = "<start_tool>"
START_OBSERVATION = "<start_observation>"
START_WORK = "<start_work>"
SPECIAL_TOKENS = (START_TOOL, START_OBSERVATION, START_WORK)
FINISHED = "Finished"  # an Action that ends tool use
MAX_CALLS = 3


class TraceParseError(ValueError):
    """Generated text that does not follow the trace format."""


@dataclass
class ToolStep:
    thought: str
    action: str
    action_input: str
    observation: str = ""


@dataclass
class Trace:
    steps: list[ToolStep] = field(default_factory=list)
    rationale: str = ""

    def to_dict(self) -> dict:
        return {"steps": [vars(s).copy() for s in self.steps], "rationale": self.rationale}

    @classmethod
    def from_dict(cls, data: dict) -> Trace:
        return cls([ToolStep(**s) for s in data.get("steps", [])], data.get("rationale", ""))


def add_special_tokens(tokenizer, model=None) -> list[int]:
    """Add the three trace tokens to `tokenizer` (and grow `model`'s embeddings)."""
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    if model is not None and model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    return [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]


# -- rendering -----------------------------------------------------------------------------
def user_prefix(question: str) -> str:
    return f"### USER:\nQuestion: {question}\nAnswer: "


ASSISTANT = "\n### ASSISTANT:\n"


def call_text(step: ToolStep) -> str:
    """What the model writes for one call, up to and including <start_observation>."""
    return (
        f"{START_TOOL} Thought: {step.thought}\nAction: {step.action}\n"
        f"Action Input: {step.action_input}\n{START_OBSERVATION}"
    )


def observation_text(observation: str) -> str:
    """What the tool loop appends after <start_observation>."""
    return f" Observation: {observation}\n"


def work_text(rationale: str, eos: str) -> str:
    return f"{START_WORK} Work: {rationale}{eos}"


def segments(
    question: str, answer: str, trace: Trace, eos: str, include_rationale: bool = True
) -> list[tuple[str, str]]:
    """The example as (kind, text) pieces, kinds: prompt, answer, tool, observation,
    rationale. Concatenated, they are the full text the reward model reads."""
    out = [("prompt", user_prefix(question)), ("answer", answer), ("prompt", ASSISTANT)]
    for step in trace.steps:
        out.append(("tool", call_text(step)))
        out.append(("observation", observation_text(step.observation)))
    if include_rationale:
        out.append(("rationale", work_text(trace.rationale, eos)))
    else:
        out.append(("rationale", f"{START_WORK}{eos}"))
    return out


def render(question: str, answer: str, trace: Trace, eos: str) -> str:
    return "".join(text for _, text in segments(question, answer, trace, eos))


# -- parsing -------------------------------------------------------------------------------
_CALL = re.compile(
    r"Thought:(?P<thought>.*?)\nAction:(?P<action>[^\n]*)\nAction Input:(?P<input>.*)",
    re.DOTALL,
)


def parse_call(chunk: str) -> ToolStep:
    """A generated call (text after <start_tool>, before <start_observation>) -> ToolStep."""
    text = chunk.replace(START_TOOL, "").replace(START_OBSERVATION, "")
    m = _CALL.search(text)
    if m is None:
        m_action = re.search(r"Action:([^\n]*)", text)
        if m_action and m_action[1].strip() == FINISHED:
            return ToolStep("", FINISHED, "")
        raise TraceParseError(
            f"expected 'Thought: ...\\nAction: ...\\nAction Input: ...', got {text.strip()[:120]!r}"
        )
    action = m["action"].strip()
    if not action:
        raise TraceParseError("the Action is empty")
    return ToolStep(m["thought"].strip(), action, m["input"].strip())


def parse_trace(text: str, eos: str = "</s>") -> Trace:
    """The trace written after `### ASSISTANT:` in a full text."""
    _, sep, body = text.partition(ASSISTANT.strip("\n"))
    if not sep:
        raise TraceParseError("no '### ASSISTANT:' line")
    work, has_work, rationale = body.partition(START_WORK)
    steps = []
    for chunk in work.split(START_TOOL)[1:]:
        call, has_obs, obs = chunk.partition(START_OBSERVATION)
        step = parse_call(call)
        if has_obs:
            step.observation = obs.strip().removeprefix("Observation:").strip()
        steps.append(step)
    if has_work:
        rationale = rationale.strip().removeprefix("Work:").strip()
        rationale = rationale.split(eos)[0].strip() if eos else rationale
    return Trace(steps, rationale if has_work else "")
