"""The two inference modes of GREAM (arXiv 2510.20815, §3.4).

- Direct sequence recommendation: beam search constrained by a prefix trie of the valid
  IDs (`prefix_allowed_tokens_fn`), so every returned ID is a real item; the top-K beams by
  sequence score (total log-prob: length_penalty 0) are the ranking.
- Sequential reasoning recommendation: sample a rationale `<think>…</think>`, then rank
  every item by the same trie-constrained beam search after `<answer>` (a full ranking, as
  in direct mode, not a handful of sampled IDs). A rationale that does not close within
  the token budget is closed by force and counted.

The same trie constrains SRPO's rollouts (`trie_constraint`, `AnswerConstraint`: the
task's `generation_constraint`), so every sampled answer is a real item.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch

from rewardkit.data import left_pad
from rewardkit.trainer.rollout import StopOnText
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

    def ending_with(self, token: int) -> IDTrie:
        """A copy whose IDs end with `token` instead of eos (e.g. the first token of
        `</answer>`: an ID inside the reasoning format is followed by that, not by eos)."""
        copy = object.__new__(IDTrie)
        copy.eos, copy.depth, copy.root = token, self.depth, self.root
        return copy

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


@torch.no_grad()
def constrained_beams(
    model,
    trie: IDTrie,
    prefixes: Sequence[Sequence[int]],
    pad_id: int,
    top_k: int,
    num_beams: int,
    tries: Sequence[IDTrie] | None = None,
) -> list[tuple[list[str], list[float]]]:
    """Per token-id prefix: up to top_k distinct items and their scores (total log-prob of
    the ID and its terminator, `trie.eos`), best first, by trie-constrained beam search
    with `num_beams` beams. `tries[i]`: prefix i's own trie (a subset of `trie`)."""
    if top_k < 1 or num_beams < top_k:
        raise ValueError(
            f"constrained beam search: need 1 <= top_k <= num_beams, got top_k={top_k}, "
            f"num_beams={num_beams}"
        )
    device = next(model.parameters()).device
    enc = {
        k: v.to(device) for k, v in left_pad([list(p) for p in prefixes], pad_id, device).items()
    }
    width = enc["input_ids"].shape[1]

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
        pad_token_id=pad_id,
        eos_token_id=trie.eos,
    )
    seqs = out.sequences[:, width:].view(len(prefixes), top_k, -1)
    scores = out.sequences_scores.view(len(prefixes), top_k)
    results = []
    for p in range(len(prefixes)):
        ranked: list[str] = []
        best: list[float] = []
        for j in torch.argsort(scores[p], descending=True, stable=True).tolist():
            item = trie.item(seqs[p, j].tolist())
            if item is None:
                raise RuntimeError(
                    f"constrained beam search returned a non-item {seqs[p, j].tolist()} (trie bug)"
                )
            if item not in ranked:
                ranked.append(item)
                best.append(float(scores[p, j]))
        results.append((ranked, best))
    return results


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
    if exclude is not None and len(exclude) != len(prompts):
        raise ValueError(
            f"direct_recommend: {len(prompts)} prompts but {len(exclude)} exclude sets"
        )
    tries = [trie.without(e) for e in exclude] if exclude is not None else None
    prefixes = [tokenizer(p)["input_ids"] for p in prompts]
    beams = constrained_beams(
        model, trie, prefixes, _pad_id(tokenizer), top_k, num_beams, tries=tries
    )
    return [items for items, _ in beams]


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def find_last(seq: Sequence[int], sub: Sequence[int]) -> int:
    """The index just past the last occurrence of `sub` in `seq`, or -1."""
    n = len(sub)
    for i in range(len(seq) - n, -1, -1):
        if list(seq[i : i + n]) == list(sub):
            return i + n
    return -1


class AnswerConstraint:
    """Reasoning-mode rollouts (`allowed(prompt_ids, completion_ids)` for the core
    `generation_constraint` hook): free text until the completion holds the tokens of
    `<answer>`, then a real item's ID from the trie, then `</answer>` and eos. Text is
    matched as the tokenizer spells it (exact for a character tokenizer; a BPE model
    writing `<answer>` in other pieces is left unconstrained, and the reward judges it)."""

    def __init__(self, trie: IDTrie, tokenizer):
        self.open = tokenizer.encode("<answer>", add_special_tokens=False)
        close = tokenizer.encode("</answer>", add_special_tokens=False)
        self.trie, self.eos = trie.ending_with(close[0]), trie.eos
        self.tail = [*close[1:], self.eos]  # after the ID and the first token of </answer>

    def __call__(self, prompt_ids: Sequence[int], completion: Sequence[int]) -> list[int] | None:
        start = find_last(completion, self.open)
        if start < 0:
            return None
        answer = list(completion[start:])
        node, i = self.trie.root, 0
        while i < len(answer) and None not in node:
            if answer[i] not in node:
                return None  # not reached under this constraint
            node, i = node[answer[i]], i + 1
        if None not in node:
            return [t for t in node if t is not None]
        written = answer[i:]  # the terminator (first token of </answer>) and what followed
        if not written:
            return [self.trie.eos]
        done = len(written) - 1
        return [self.tail[done]] if done < len(self.tail) else [self.eos]


def trie_constraint(trie: IDTrie):
    """Direct-mode rollouts: the completion is an item's ID, then eos."""

    def allowed(prompt_ids: Sequence[int], completion: Sequence[int]) -> list[int]:
        return trie.allowed(completion)

    return allowed


@dataclass
class ReasoningRanking:
    items: list[str]  # best first
    scores: list[float]  # total log-prob of each item's ID after its best rationale
    invalid: int = 0  # rationales that did not close </think> within the budget
    completions: list[str] = field(default_factory=list)  # the rationales, as written


def rank_completions(
    completions: Sequence[str], logprobs: Sequence[float], ids: SemanticIDs
) -> ReasoningRanking:
    """Rank the items named in sampled reasoning completions by their best total log-prob
    (bad format or an ID that is no item: dropped and counted)."""
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
def constrained_item_logprob(
    model,
    trie: IDTrie,
    prompt_ids: Sequence[int],
    item_ids: Sequence[int],
    temperature: float = 1.0,
) -> float:
    """Log of the probability that trie-constrained sampling at `temperature` (what SRPO's
    rollouts do) writes the ID `item_ids` after `prompt_ids`: at each ID token, the
    log-softmax of logits / temperature over the tokens the trie allows there. Over all
    items these probabilities sum to 1."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(item_ids)], device=device)
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    total = 0.0
    for j, tok in enumerate(item_ids):
        allowed = trie.allowed(list(item_ids[:j]))
        if tok not in allowed:
            raise ValueError(f"constrained_item_logprob: {list(item_ids)} is not an item's ID")
        total += float(logits[j, allowed].log_softmax(-1)[allowed.index(tok)])
    return total


@torch.no_grad()
def sample_rationales(
    model,
    tokenizer,
    prompt_ids: Sequence[int],
    num: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> tuple[list[list[int]], int]:
    """`num` sampled rationales, each cut just after `</think>` (or closed by force when
    the budget ran out or eos came first: counted), and how many were closed by force."""
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    out = model.generate(
        torch.tensor([list(prompt_ids)], device=device),
        do_sample=True,
        temperature=temperature,
        top_k=0,
        num_return_sequences=num,
        max_new_tokens=max_new_tokens,
        stopping_criteria=[StopOnText(tokenizer, ["</think>"], len(prompt_ids))],
        pad_token_id=_pad_id(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
    )
    close = tokenizer.encode("</think>", add_special_tokens=False)
    rationales, forced = [], 0
    for row in out[:, len(prompt_ids) :].tolist():
        end = find_last(row, close)
        if end >= 0:
            rationales.append(row[:end])
            continue
        forced += 1
        special = set(tokenizer.all_special_ids)
        rationales.append([t for t in row if t not in special] + close)
    return rationales, forced


@torch.no_grad()
def reasoning_recommend(
    model,
    tokenizer,
    trie: IDTrie,
    prompt: str,
    top_k: int = 10,
    num_beams: int = 20,
    num_rationales: int = 1,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    seed: int = 0,
) -> ReasoningRanking:
    """Reasoning mode for one prompt: sample `num_rationales` rationales, then rank every
    item by trie-constrained beam search after `<rationale><answer>` (`num_beams` beams, top
    `top_k`). Each item keeps its best score, log p(ID, first token of `</answer>` |
    prompt, rationale), over the rationales."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    rationales, forced = sample_rationales(
        model, tokenizer, prompt_ids, num_rationales, max_new_tokens, temperature, seed
    )
    answer = tokenizer.encode("<answer>", add_special_tokens=False)
    close = tokenizer.encode("</answer>", add_special_tokens=False)
    inner = trie.ending_with(close[0])
    prefixes = [prompt_ids + r + answer for r in rationales]
    best: dict[str, float] = {}
    for items, scores in constrained_beams(
        model, inner, prefixes, _pad_id(tokenizer), top_k, num_beams
    ):
        for item, score in zip(items, scores, strict=True):
            best[item] = max(score, best.get(item, float("-inf")))
    order = sorted(best, key=lambda i: -best[i])[:top_k]
    texts = [tokenizer.decode(r, skip_special_tokens=True) for r in rationales]
    return ReasoningRanking(order, [best[i] for i in order], forced, texts)
