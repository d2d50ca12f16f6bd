"""Trie-constrained beam search (direct mode) and reasoning-mode ranking, on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardkit.tiny import build_tiny_model
from rewardkit.trainer.rollout import HFGenerate
from rewardkit_recsys.inference import (
    AnswerConstraint,
    IDTrie,
    constrained_item_logprob,
    direct_recommend,
    rank_completions,
    reasoning_recommend,
    sample_rationales,
    sequence_logprobs,
    trie_constraint,
)
from rewardkit_recsys.semantic_ids import codes_to_ids, extend_tokenizer

# 7 items over L = 2, K = 3; items 0 and 1 collide on (0, 1) and get a suffix
CODES = np.array([[0, 1], [0, 1], [0, 0], [1, 2], [2, 2], [2, 0], [1, 0]])
ITEMS = [f"m{i}" for i in range(7)]


@pytest.fixture(scope="module")
def setup():
    model, tok = build_tiny_model(hidden_size=32, num_heads=2, num_layers=1, seed=3)
    ids = codes_to_ids(CODES, ITEMS, 3)
    extend_tokenizer(tok, model, ids)
    # resizing initialises the new rows near their mean: spread them so that the items'
    # log-probs are far apart (no near-ties for the ranking test)
    new = len(ids.vocabulary())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            weight[-new:] = torch.randn(new, weight.shape[1], generator=gen)
    return model, tok, ids, IDTrie(ids, tok)


def token_ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_trie_allows_only_real_continuations(setup):
    _, tok, ids, trie = setup
    a1, b2 = token_ids(tok, "<|a_1|><|b_2|>")
    assert sorted(trie.allowed([])) == sorted(token_ids(tok, "<|a_1|><|a_2|><|a_3|>"))
    assert sorted(trie.allowed([a1])) == sorted(token_ids(tok, "<|b_1|><|b_2|>"))
    assert sorted(trie.allowed([a1, b2])) == sorted(token_ids(tok, "<|c_1|><|c_2|>"))
    full = token_ids(tok, ids.item_to_id["m2"])
    assert trie.allowed(full) == [tok.eos_token_id]
    assert trie.allowed([*full, tok.eos_token_id, tok.pad_token_id]) == [tok.eos_token_id]
    assert trie.allowed(token_ids(tok, "<|b_1|>")) == []  # left the trie
    assert trie.item([*full, tok.eos_token_id]) == "m2"
    assert trie.item([a1, b2]) is None and trie.depth == 3


def test_trie_needs_the_tokens_in_the_vocabulary():
    _, tok = build_tiny_model(hidden_size=16, num_heads=2, num_layers=1)
    with pytest.raises(ValueError, match="call extend_tokenizer first"):
        IDTrie(codes_to_ids(CODES, ITEMS, 3), tok)


def test_constrained_beam_search_returns_real_items_ranked_by_log_prob(setup):
    model, tok, ids, trie = setup
    prompts = ["history: <|a_1|><|b_1|> next:", "x"]
    rankings = direct_recommend(model, tok, trie, prompts, top_k=7)
    for prompt, ranking in zip(prompts, rankings, strict=True):
        assert sorted(ranking) == sorted(ITEMS)  # every output a real item, no duplicates
        # with as many beams as items the search is exhaustive: the order must be the
        # brute-force order of total log-prob of ID + eos
        completions = [token_ids(tok, ids.item_to_id[i]) + [tok.eos_token_id] for i in ITEMS]
        scores = sequence_logprobs(model, tok(prompt)["input_ids"], completions)
        brute = [ITEMS[j] for j in np.argsort(scores)[::-1]]
        assert ranking == brute
        gaps = np.diff(sorted(scores))
        assert gaps.min() > 1e-3  # the order is not decided by rounding
    top3 = direct_recommend(model, tok, trie, prompts[:1], top_k=3, num_beams=7)[0]
    assert top3 == rankings[0][:3]
    with pytest.raises(ValueError, match="top_k <= num_beams"):
        direct_recommend(model, tok, trie, prompts, top_k=5, num_beams=2)


def test_excluded_items_are_never_recommended_and_the_rest_keep_their_order(setup):
    """Each prompt gets its own exclusions; with as many beams as items the search is
    exhaustive, so the ranking is the full ranking minus the excluded items."""
    model, tok, _, trie = setup
    prompts = ["history: <|a_1|><|b_1|> next:", "x"]
    full = direct_recommend(model, tok, trie, prompts, top_k=7)
    exclude = [set(full[0][:2]), {ITEMS[0], ITEMS[-1], full[1][0]}]
    left = direct_recommend(model, tok, trie, prompts, top_k=4, num_beams=7, exclude=exclude)
    for ranking, ranked_all, gone in zip(left, full, exclude, strict=True):
        assert not set(ranking) & gone
        assert ranking == [i for i in ranked_all if i not in gone][:4]
    with pytest.raises(ValueError, match="2 prompts but 1 exclude sets"):
        direct_recommend(model, tok, trie, prompts, top_k=2, exclude=[set()])


def test_trie_without_prunes_empty_branches(setup):
    _, tok, ids, trie = setup
    smaller = trie.without(ITEMS[1:])
    only = token_ids(tok, ids.item_to_id[ITEMS[0]])
    assert smaller.allowed([]) == [only[0]]  # every other first token is gone
    assert smaller.item(only) == ITEMS[0] and trie.item(only) == ITEMS[0]  # original intact
    assert len(trie.allowed([])) > 1
    with pytest.raises(ValueError, match="every item was left out"):
        trie.without(ITEMS)


def test_rank_completions_keeps_best_score_per_item_and_counts_invalid(setup):
    _, _, ids, _ = setup
    good = "<think>t</think><answer>{}</answer>"
    completions = [
        good.format(ids.item_to_id["m3"]),  # −2.0
        good.format(ids.item_to_id["m5"]),  # −1.0: best overall
        good.format(ids.item_to_id["m3"]),  # −0.5 beats m3's −2.0 → m3 first
        good.format("<|a_1|><|b_2|>"),  # prefix of a collided ID: no item → invalid
        ids.item_to_id["m4"],  # no think/answer → invalid
        "<think>t</think><answer>nothing</answer>",  # no ID → invalid
    ]
    ranked = rank_completions(completions, [-2.0, -1.0, -0.5, 0.0, 0.0, 0.0], ids)
    assert ranked.items == ["m3", "m5"] and ranked.scores == [-0.5, -1.0]
    assert ranked.invalid == 3
    with pytest.raises(ValueError, match="2 completions but 1 log-probs"):
        rank_completions(completions[:2], [0.0], ids)


def test_reasoning_ranks_every_item_by_beam_search_after_the_rationale(setup):
    """Reasoning mode: one sampled rationale (the untrained model never closes it: closed by
    force, counted), then a constrained beam search over all items; with more beams than
    items the search is exhaustive, so its order is the brute-force order of
    log p(ID, first token of </answer> | prompt, rationale, <answer>)."""
    model, tok, ids, trie = setup
    result = reasoning_recommend(
        model, tok, trie, "history: x", top_k=7, num_beams=10, max_new_tokens=12, seed=0
    )
    assert result.invalid == 1 and len(result.completions) == 1
    assert result.completions[0].endswith("</think>")
    assert sorted(result.items) == sorted(ITEMS)  # a full ranking, every item once
    prompt_ids = tok("history: x")["input_ids"]
    [rationale], forced = sample_rationales(model, tok, prompt_ids, 1, 12, 1.0, seed=0)
    assert forced == 1
    prefix = prompt_ids + rationale + token_ids(tok, "<answer>")
    close = token_ids(tok, "</answer>")[0]
    brute = {
        item: sequence_logprobs(model, prefix, [token_ids(tok, ids.item_to_id[item]) + [close]])[0]
        for item in ITEMS
    }
    assert result.items[0] == max(brute, key=brute.get)  # the beam's top item is the argmax
    assert result.items == sorted(ITEMS, key=lambda i: -brute[i])
    assert result.scores == pytest.approx([brute[i] for i in result.items], abs=1e-4)
    again = reasoning_recommend(
        model, tok, trie, "history: x", top_k=7, num_beams=10, max_new_tokens=12, seed=0
    )
    assert again.items == result.items and again.completions == result.completions  # seeded
    top3 = reasoning_recommend(
        model, tok, trie, "history: x", top_k=3, num_beams=10, seed=0, max_new_tokens=12
    )
    assert top3.items == result.items[:3]


def test_rollout_constraints_spell_real_items(setup):
    """SRPO's rollout constraints: direct mode samples only item IDs (then eos); reasoning
    mode leaves the rationale free and spells an item's ID and `</answer>` after `<answer>`."""
    model, tok, ids, trie = setup
    eos = tok.eos_token_id
    torch.manual_seed(0)
    backend = HFGenerate(lambda: model, tok, temperature=1.5, allowed=trie_constraint(trie))
    prompts = [tok("history: x")["input_ids"], tok("history: yz")["input_ids"]]
    samples = backend.generate(prompts * 32, max_new_tokens=8)
    texts = [tok.decode(g.ids, skip_special_tokens=True) for g in samples]
    assert all(g.ids[-1] == eos and not g.truncated for g in samples)
    assert set(texts) <= set(ids.id_to_item) and len(set(texts)) > 2
    free = HFGenerate(lambda: model, tok, temperature=1.5).generate(prompts * 32, 8)
    assert not {tok.decode(g.ids, skip_special_tokens=True) for g in free} <= set(ids.id_to_item)

    answer = AnswerConstraint(trie, tok)
    head = token_ids(tok, "<think>likes x</think><answer>")
    assert answer([1], token_ids(tok, "<think>likes x</th")) is None  # free rationale
    assert sorted(answer([1], head)) == sorted(trie.allowed([]))
    m3 = token_ids(tok, ids.item_to_id["m3"])
    close = token_ids(tok, "</answer>")
    assert answer([1], head + m3[:1]) == trie.allowed(m3[:1])
    assert answer([1], head + m3) == [close[0]]
    for k in range(1, len(close)):
        assert answer([1], head + m3 + close[:k]) == [close[k]]
    assert answer([1], head + m3 + close) == [eos]
    assert answer([1], head + m3 + close + [eos, tok.pad_token_id]) == [eos]


def test_constrained_item_probabilities_sum_to_one(setup):
    """What trie-masked sampling gives each item: a distribution over the catalogue."""
    model, tok, ids, trie = setup
    prompt = tok("history: x")["input_ids"]
    for temperature in (1.0, 0.5):
        p = [
            constrained_item_logprob(
                model, trie, prompt, token_ids(tok, ids.item_to_id[i]), temperature
            )
            for i in ITEMS
        ]
        assert sum(np.exp(p)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="not an item's ID"):
        constrained_item_logprob(model, trie, prompt, token_ids(tok, "<|a_1|><|b_2|><|a_1|>"))
