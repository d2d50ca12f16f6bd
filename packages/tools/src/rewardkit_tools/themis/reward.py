"""`tools.themis`: a trained Themis model scores samples, tool loop included.

For each sample the question is the prompt (the last user message of a chat prompt) and
the answer is the completion. The model writes its verification trace with real tool
calls (`tool_loop`), then one forward pass over the full text gives the reward (value
head on the last token). `info` logs the number of tool calls and the tools used.
"""

from __future__ import annotations

from rewardkit.types import RewardOutput, Sample
from rewardkit_tools.themis.loop import HFGenerate, tool_loop
from rewardkit_tools.themis.model import ThemisRewardModel
from rewardkit_tools.themis.tools import make_toolbox
from rewardkit_tools.themis.trace import MAX_CALLS


def question_of(sample: Sample) -> str:
    if isinstance(sample.prompt, str):
        return sample.prompt
    users = [m.get("content", "") for m in sample.prompt if m.get("role") == "user"]
    if not users:
        raise ValueError("tools.themis needs a text prompt or a chat prompt with a user message")
    return users[-1]


class ThemisReward:
    """Options: path (a saved ThemisRewardModel) or model (an instance); tools (names of
    registered tools, default all); max_calls (≤ 3); max_new_tokens per generation."""

    def __init__(
        self,
        path: str | None = None,
        model: ThemisRewardModel | None = None,
        tools: list[str] | None = None,
        max_calls: int = MAX_CALLS,
        max_new_tokens: int = 128,
    ):
        if (path is None) == (model is None):
            raise ValueError("tools.themis needs exactly one of `path` (a saved model) or `model`")
        if not 0 <= max_calls <= MAX_CALLS:
            raise ValueError(f"max_calls must be in [0, {MAX_CALLS}], got {max_calls}")
        self.model = ThemisRewardModel.from_pretrained(path) if model is None else model
        self.model.eval()
        self.toolbox = make_toolbox(tools)
        self.max_calls = max_calls
        self.generate = HFGenerate(self.model.lm, self.model.tokenizer, max_new_tokens)

    def __call__(self, samples: list[Sample]) -> list[RewardOutput]:
        outputs = []
        eos = self.model.tokenizer.eos_token
        for s in samples:
            text, trace = tool_loop(
                self.generate, question_of(s), s.completion, self.toolbox, eos, self.max_calls
            )
            score = self.model.reward(text)
            outputs.append(
                RewardOutput(
                    score,
                    info={
                        "tool_calls": len(trace.steps),
                        "tools": ",".join(step.action for step in trace.steps),
                    },
                )
            )
        return outputs
