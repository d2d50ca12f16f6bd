"""The Themis reward model and its training loss (arXiv 2310.01045, §3.3, eq. 1-4).

A causal LM reads the whole example (question, answer, tool trace, rationale); a linear
value head on the last token's hidden state gives the reward r(x, y). Training:

    L = L_LM + λ·L_rank,   L_rank = −log σ(r(x, y_w) − r(x, y_l))           (λ = 0.5)

L_LM is the next-token loss over the assistant trace of both samples (tool calls weight
1, observations weight β, rationale weight ω) plus the answer tokens of the chosen one.
β = 0 masks the observations (the tools wrote them), ω = 0 drops the rationale.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rewardkit_tools.themis.trace import Trace, add_special_tokens, segments


@dataclass
class LossWeights:
    """Per-token LM weights of each segment kind (the paper's α=1, β, ω)."""

    tool: float = 1.0
    observation: float = 1.0  # β; 0 masks observations
    rationale: float = 1.0  # ω; 0 drops the rationale from the LM loss
    answer: float = 1.0  # answer tokens of the chosen sample (0 for the rejected one)

    def of(self, kind: str, chosen: bool) -> float:
        if kind == "prompt":
            return 0.0
        if kind == "answer":
            return self.answer if chosen else 0.0
        return {"tool": self.tool, "observation": self.observation, "rationale": self.rationale}[
            kind
        ]


def tokenize(tokenizer, text: str) -> list[int]:
    """The one tokenisation of a Themis text: BOS (when the tokenizer has one), then the
    whole text's ids with no other special tokens added. Training (`encode`), scoring
    (`ThemisRewardModel.reward`) and generation (`loop.HFGenerate`) all use it, so the
    model sees the same ids for the same text in each: a byte-level BPE merges across
    segment boundaries ("Answer: " + "42" is not "Answer: 42" tokenised piece by piece)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.bos_token_id is not None:
        ids.insert(0, tokenizer.bos_token_id)
    return ids


def encode(
    tokenizer,
    question: str,
    answer: str,
    trace: Trace,
    chosen: bool,
    weights: LossWeights | None = None,
    include_trace: bool = True,
    max_length: int | None = None,
) -> tuple[list[int], list[float]]:
    """Token ids of one example and the LM weight of each token (as a prediction target).

    With include_trace=False the example has no tool calls and no rationale (a plain
    reward model's input). The ids are `tokenize` of the whole text (what scoring and
    generation see); a token's weight is that of the segment holding its last character
    (a byte-level BPE token " 42" that starts with the prompt's space is an answer token).
    Needs a fast tokenizer (character offsets).
    """
    weights = weights or LossWeights()
    trace = trace if include_trace else Trace()
    pieces = segments(question, answer, trace, tokenizer.eos_token, include_rationale=include_trace)
    text = "".join(piece for _, piece in pieces)
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("themis encode needs a fast tokenizer (character offsets)")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends, kinds, position = [], [], 0
    for kind, piece in pieces:
        position += len(piece)
        ends.append(position)
        kinds.append(kind)
    ids = tokenize(tokenizer, text)
    lm_weights = [0.0] * (len(ids) - len(encoded["input_ids"]))  # the BOS
    for start, end in encoded["offset_mapping"]:
        last = max(end - 1, start)
        k = bisect.bisect_right(ends, last)
        lm_weights.append(weights.of(kinds[min(k, len(kinds) - 1)], chosen))
    if max_length is not None and len(ids) > max_length:
        raise ValueError(f"example is {len(ids)} tokens, longer than max_length={max_length}")
    return ids, lm_weights


def pad(rows: list[list[float]], value: float, dtype: torch.dtype) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=dtype)


def collate(examples: list[tuple[list[int], list[float]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and lm_weights."""
    return {
        "input_ids": pad([e[0] for e in examples], pad_id, torch.long),
        "attention_mask": pad([[1] * len(e[0]) for e in examples], 0, torch.long),
        "lm_weights": pad([e[1] for e in examples], 0.0, torch.float),
    }


class ThemisRewardModel(nn.Module):
    """Causal LM + linear value head on the last (non-padding) token."""

    def __init__(self, lm, tokenizer):
        super().__init__()
        add_special_tokens(tokenizer, lm)
        self.lm, self.tokenizer = lm, tokenizer
        self.value_head = nn.Linear(lm.config.hidden_size, 1)
        nn.init.zeros_(self.value_head.bias)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(LM logits (B, T, V), rewards (B,)) for right-padded batches."""
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        last = attention_mask.sum(dim=1) - 1
        h_last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return out.logits, self.value_head(h_last).squeeze(-1)

    @torch.no_grad()
    def reward(self, text: str) -> float:
        ids = tokenize(self.tokenizer, text)
        limit = getattr(self.lm.config, "max_position_embeddings", len(ids))
        ids = torch.tensor([ids[-limit:]], device=self.value_head.weight.device)
        return self(ids, torch.ones_like(ids))[1].item()

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        self.lm.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        torch.save(self.value_head.state_dict(), path / "value_head.pt")
        (path / "themis.json").write_text(json.dumps({"format": "themis", "version": 1}))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ThemisRewardModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not (path / "value_head.pt").is_file():
            raise FileNotFoundError(f"{path} is not a saved Themis model (no value_head.pt)")
        lm = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")
        model = cls(lm, AutoTokenizer.from_pretrained(path))
        model.value_head.load_state_dict(torch.load(path / "value_head.pt", weights_only=True))
        return model.eval()


# -- losses --------------------------------------------------------------------------------
def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted next-token loss: token t+1 is predicted from logits at t and counted with
    weight weights[t+1]; Σ w·nll / Σ w (0 when every weight is 0)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    w = weights[:, 1:]
    total = w.sum()
    return (nll * w).sum() / total if total > 0 else nll.sum() * 0.0


def rank_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """L_rank = −log σ(r(x, y_w) − r(x, y_l)), averaged over pairs."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def themis_loss(
    model: ThemisRewardModel,
    chosen: dict[str, torch.Tensor],
    rejected: dict[str, torch.Tensor],
    lam: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_LM + λ·L_rank over a batch of pairs (chosen[i] paired with rejected[i])."""
    n = chosen["input_ids"].shape[0]
    if rejected["input_ids"].shape[0] != n:
        raise ValueError("chosen and rejected batches must have the same number of rows")
    width = max(chosen["input_ids"].shape[1], rejected["input_ids"].shape[1])

    def widen(t: torch.Tensor, value: float) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[1]), value=value)

    pad_id = model.tokenizer.pad_token_id or 0
    ids = torch.cat([widen(chosen["input_ids"], pad_id), widen(rejected["input_ids"], pad_id)])
    mask = torch.cat([widen(chosen["attention_mask"], 0), widen(rejected["attention_mask"], 0)])
    weights = torch.cat([widen(chosen["lm_weights"], 0.0), widen(rejected["lm_weights"], 0.0)])
    device = model.value_head.weight.device
    logits, rewards = model(ids.to(device), mask.to(device))
    l_lm = lm_loss(logits, ids.to(device), weights.to(device))
    l_rank = rank_loss(rewards[:n], rewards[n:])
    total = l_lm + lam * l_rank
    accuracy = (rewards[:n] > rewards[n:]).float().mean().item()
    return total, {
        "loss": total.item(),
        "lm": l_lm.item(),
        "rank": l_rank.item(),
        "accuracy": accuracy,
    }
