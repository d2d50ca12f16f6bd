"""The two inference modes of GREAM (arXiv 2510.20815, §3.4).

- Direct sequence recommendation: beam search constrained by a prefix trie of the valid
  IDs (`prefix_allowed_tokens_fn`), so every returned ID is a real item; the top-K beams by
  sequence score (total log-prob: length_penalty 0) are the ranking.
- Sequential reasoning recommendation: sample `<think>…</think><answer>ID</answer>`
  completions, score each by its total log-prob under the model, keep the best score of
  each item and rank by it; completions with an invalid format or an ID that is no item
  are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch

from rewardkit_recsys.rewards import parse_prediction
from rewardkit_recsys.semantic_ids import SemanticIDs, split_id


class IDTrie:
    """Prefix trie over the token ids of every item's ID; leaves name the item."""

    def __init__(self, ids: SemanticIDs, tokenizer):
        self.eos = tokenizer.eos_token_id
        if self.eos is None:
            raise ValueError("IDTrie: the tokenizer has no eos token to end an ID with")
        vocab = tokenizer.get_vocab()
        self.root: dict = {}
        self.depth = 0
        for item, sid in ids.item_to_id.items():
            node = self.root
            tokens = split_id(sid)
            for tok in tokens:
                if tok not in vocab:
                    raise ValueError(
                        f"IDTrie: token {tok!r} of item {item!r} is not in the "
                        f"tokenizer; call extend_tokenizer first"
                    )
                node = node.setdefault(vocab[tok], {})
            if node:
                raise ValueError(f"IDTrie: the ID of item {item!r} is a prefix of another ID")
            node[None] = item
            self.depth = max(self.depth, len(tokens))

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Tokens that may follow `generated`: the trie's children, eos once an ID is
        complete (and after eos), nothing when `generated` left the trie."""
        node = self.root
        for tok in generated:
            if None in node:  # ID complete: only eos, then padding after it
                return [self.eos]
            if tok not in node:
                return []
            node = node[tok]
        return [self.eos] if None in node else [t for t in node if t is not None]

    def without(self, items: Collection[str]) -> IDTrie:
        """A copy that spells every item but `items`; branches left empty are pruned."""
        drop = set(items)

        def prune(node: dict) -> dict:
            kept = {}
            for tok, child in node.items():
                if tok is None:
                    if child not in drop:
                        kept[None] = child
                elif sub := prune(child):
                    kept[tok] = sub
            return kept

        copy = object.__new__(IDTrie)
        copy.eos, copy.depth, copy.root = self.eos, self.depth, prune(self.root)
        if not copy.root:
            raise ValueError("IDTrie.without: every item was left out")
        return copy

    def item(self, generated: Sequence[int]) -> str | None:
        """The item spelled by `generated` (trailing eos/padding ignored), else None."""
        node = self.root
        for tok in generated:
            if None in node:
                break
            if tok not in node:
                return None
            node = node[tok]
        return node.get(None)


def _encode_left(tokenizer, prompts: Sequence[str], device) -> dict[str, torch.Tensor]:
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)
    finally:
        tokenizer.padding_side = side


@torch.no_grad()
def direct_recommend(
    model,
    tokenizer,
    trie: IDTrie,
    prompts: Sequence[str],
    top_k: int = 10,
    num_beams: int | None = None,
    exclude: Sequence[Collection[str]] | None = None,
) -> list[list[str]]:
    """Trie-constrained beam search; returns, per prompt, up to top_k distinct items, best
    first by total log-prob. `exclude[i]`: items prompt i may not be given (e.g. the ones
    its user has seen); they are cut from that prompt's trie, so the search spends no beam
    on them."""
    num_beams = num_beams or top_k
    if top_k < 1 or num_beams < top_k:
        raise ValueError(
            f"direct_recommend: need 1 <= top_k <= num_beams, got top_k={top_k}, "
            f"num_beams={num_beams}"
        )
    enc = _encode_left(tokenizer, prompts, next(model.parameters()).device)
    width = enc["input_ids"].shape[1]

    if exclude is not None and len(exclude) != len(prompts):
        raise ValueError(f"direct_recommend: {len(prompts)} prompts but {len(exclude)} exclude sets")
    tries = [trie.without(e) for e in exclude] if exclude is not None else None

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        own = tries[batch_id] if tries is not None else trie
        return own.allowed(input_ids[width:].tolist())

    out = model.generate(
        **enc,
        num_beams=num_beams,
        num_return_sequences=top_k,
        do_sample=False,
        max_new_tokens=trie.depth + 1,
        prefix_allowed_tokens_fn=allowed,
        length_penalty=0.0,
        early_stopping=True,
        return_dict_in_generate=True,
        output_scores=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=trie.eos,
    )
    seqs = out.sequences[:, width:].view(len(prompts), top_k, -1)
    scores = out.sequences_scores.view(len(prompts), top_k)
    rankings = []
    for p in range(len(prompts)):
        ranked: list[str] = []
        for j in torch.argsort(scores[p], descending=True, stable=True).tolist():
            item = trie.item(seqs[p, j].tolist())
            if item is None:
                raise RuntimeError(
                    f"constrained beam search returned a non-item {seqs[p, j].tolist()} (trie bug)"
                )
            if item not in ranked:
                ranked.append(item)
        rankings.append(ranked)
    return rankings


@dataclass
class ReasoningRanking:
    items: list[str]  # best first
    scores: list[float]  # total log-prob of each item's best completion
    invalid: int = 0  # completions dropped: bad format or an ID that is no item
    completions: list[str] = field(default_factory=list)


def rank_completions(
    completions: Sequence[str], logprobs: Sequence[float], ids: SemanticIDs
) -> ReasoningRanking:
    """Rank the items named in reasoning completions by their best total log-prob."""
    if len(completions) != len(logprobs):
        raise ValueError(f"{len(completions)} completions but {len(logprobs)} log-probs")
    best: dict[str, float] = {}
    invalid = 0
    for text, lp in zip(completions, logprobs, strict=True):
        tokens = parse_prediction(text, "reasoning")
        item = ids.id_to_item.get("".join(tokens)) if tokens else None
        if item is None:
            invalid += 1
        elif lp > best.get(item, float("-inf")):
            best[item] = float(lp)
    order = sorted(best, key=lambda i: -best[i])
    return ReasoningRanking(order, [best[i] for i in order], invalid, list(completions))


@torch.no_grad()
def sequence_logprobs(
    model,
    prompt_ids: Sequence[int],
    completions: Sequence[Sequence[int]],
) -> list[float]:
    """Total log-prob of each completion (its tokens, eos included where present)."""
    device = next(model.parameters()).device
    out = []
    for comp in completions:
        ids = torch.tensor([list(prompt_ids) + list(comp)], device=device)
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
        lp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(prompt_ids) :, None])
        out.append(float(lp.sum()))
    return out


@torch.no_grad()
def reasoning_recommend(
    model,
    tokenizer,
    ids: SemanticIDs,
    prompt: str,
    num_samples: int = 8,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    seed: int = 0,
) -> ReasoningRanking:
    """Sample reasoning completions for one prompt and rank the items they name."""
    device = next(model.parameters()).device
    prompt_ids = tokenizer(prompt)["input_ids"]
    torch.manual_seed(seed)
    out = model.generate(
        torch.tensor([prompt_ids], device=device),
        do_sample=True,
        temperature=temperature,
        top_k=0,
        num_return_sequences=num_samples,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    eos = tokenizer.eos_token_id
    comps = []
    for row in out[:, len(prompt_ids) :].tolist():  # padding only ever follows eos
        comps.append(row[: row.index(eos) + 1] if eos in row else row)
    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in comps]
    return rank_completions(texts, sequence_logprobs(model, prompt_ids, comps), ids)
