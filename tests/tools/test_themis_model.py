"""Themis reward model: label masks, both loss terms, the value head, save/load, reward."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.registry import REWARDS
from rewardkit.tiny import build_tiny_model
from rewardkit.types import Sample
from rewardkit_tools.themis.data import generate_pairs
from rewardkit_tools.themis.model import (
    LossWeights,
    ThemisRewardModel,
    collate,
    encode,
    lm_loss,
    rank_loss,
    themis_loss,
)
from rewardkit_tools.themis.reward import ThemisReward, question_of
from rewardkit_tools.themis.trace import ToolStep, Trace, segments


@pytest.fixture(scope="module")
def model():
    lm, tok = build_tiny_model(
        seed=0, num_layers=1, hidden_size=32, num_heads=2, max_position_embeddings=512
    )
    return ThemisRewardModel(lm, tok)


TRACE = Trace([ToolStep("add", "Calculator", "2+3", "5")], "ok")


def test_special_tokens_are_single_tokens(model):
    tok = model.tokenizer
    for t in ("<start_tool>", "<start_observation>", "<start_work>"):
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1
    assert model.lm.get_input_embeddings().num_embeddings >= len(tok)


def test_label_weights_follow_the_segments(model):
    tok = model.tokenizer
    weights = LossWeights(observation=0.0, rationale=0.5)
    ids, w = encode(tok, "q?", "5", TRACE, chosen=True, weights=weights)
    pieces = segments("q?", "5", TRACE, tok.eos_token)
    lengths = [len(tok(text, add_special_tokens=False)["input_ids"]) for _, text in pieces]
    # character-level tokenizer: a segment is one token per character, special tokens count 1
    tool_text = pieces[3][1]
    assert lengths[3] == len(tool_text) - len("<start_tool>") - len("<start_observation>") + 2
    expected = [0.0]  # <bos>
    per_kind = {"prompt": 0.0, "answer": 1.0, "tool": 1.0, "observation": 0.0, "rationale": 0.5}
    for (kind, _), n in zip(pieces, lengths, strict=True):
        expected += [per_kind[kind]] * n
    assert w == expected and len(ids) == len(w)
    # the rejected sample's answer is not a target; its trace is
    _, w_rej = encode(tok, "q?", "5", TRACE, chosen=False, weights=weights)
    answer_start = 1 + lengths[0]
    assert w[answer_start] == 1.0 and w_rej[answer_start] == 0.0
    assert sum(w_rej) == sum(w) - 1.0  # one answer character
    # a plain reward model input has no trace and nothing to predict but the answer
    ids_plain, w_plain = encode(tok, "q?", "5", TRACE, chosen=True, include_trace=False)
    assert "<start_tool>" not in tok.decode(ids_plain) and sum(w_plain) == 1.0 + 2.0
    # (answer "5" plus the "<start_work>" and "<eos>" tokens of the empty work segment)
    with pytest.raises(ValueError, match="max_length"):
        encode(tok, "q?", "5", TRACE, chosen=True, max_length=10)


def test_lm_loss_by_hand():
    # vocabulary 3, sequence [0, 1, 2]; position 0 predicts 1, position 1 predicts 2
    logits = torch.zeros(1, 3, 3)
    logits[0, 0] = torch.tensor([0.0, math.log(2.0), 0.0])  # p(1) = 2 / 4 -> nll ln 2
    ids = torch.tensor([[0, 1, 2]])  # position 1: uniform -> p(2) = 1/3 -> nll ln 3
    w = torch.tensor([[0.0, 1.0, 0.5]])
    expected = (math.log(2) + 0.5 * math.log(3)) / 1.5
    assert lm_loss(logits, ids, w).item() == pytest.approx(expected, rel=1e-6)
    assert lm_loss(logits, ids, torch.zeros(1, 3)).item() == 0.0


def test_masked_tokens_get_no_gradient():
    logits = torch.randn(1, 4, 5, requires_grad=True)
    ids = torch.tensor([[1, 2, 3, 4]])
    lm_loss(logits, ids, torch.tensor([[0.0, 1.0, 0.0, 1.0]])).backward()
    grad_norm = logits.grad[0].abs().sum(-1)
    # logits at t predict token t+1: t=1 (weight of token 2 is 0) and t=3 (no target) get none
    assert grad_norm[1] == 0 and grad_norm[3] == 0 and grad_norm[0] > 0 and grad_norm[2] > 0


def test_rank_loss_by_hand():
    # -log sigmoid(1) = log(1 + e^-1) = 0.3132617; -log sigmoid(-2) = log(1 + e^2) = 2.1269280
    got = rank_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    assert got.item() == pytest.approx((0.3132617 + 2.1269280) / 2, rel=1e-6)


def test_value_head_reads_the_last_real_token(model):
    tok = model.tokenizer
    a = encode(tok, "q", "12", TRACE, chosen=True)
    b = encode(tok, "a longer question", "7", TRACE, chosen=True)
    batch = collate([a, b], tok.pad_token_id)
    with torch.no_grad():
        _, rewards = model(batch["input_ids"], batch["attention_mask"])
        alone = [
            model(torch.tensor([x[0]]), torch.ones(1, len(x[0]), dtype=torch.long))[1]
            for x in (a, b)
        ]
    assert torch.allclose(rewards, torch.cat(alone), atol=1e-5)


def test_themis_loss_combines_both_terms(model):
    tok = model.tokenizer
    pair = generate_pairs(2, seed=3)
    chosen = collate(
        [encode(tok, p.question, p.chosen, p.trace_chosen, True) for p in pair], tok.pad_token_id
    )
    rejected = collate(
        [encode(tok, p.question, p.rejected, p.trace_rejected, False) for p in pair],
        tok.pad_token_id,
    )
    total, parts = themis_loss(model, chosen, rejected, lam=0.5)
    assert parts["loss"] == pytest.approx(parts["lm"] + 0.5 * parts["rank"], rel=1e-5)
    model.zero_grad()
    total.backward()
    assert model.value_head.weight.grad.abs().sum() > 0  # the ranking term trains the head
    only_lm, parts_lm = themis_loss(model, chosen, rejected, lam=0.0)
    assert parts_lm["loss"] == pytest.approx(parts["lm"], rel=1e-5)
    with pytest.raises(ValueError, match="same number"):
        themis_loss(model, chosen, collate([encode(tok, "q", "a", Trace(), False)], 0))


def test_save_and_load_keep_the_reward(model, tmp_path):
    text = "### USER:\nQuestion: q\nAnswer: a\n### ASSISTANT:\n<start_work> Work: ok<eos>"
    model.value_head.bias.data.fill_(0.25)
    model.save_pretrained(tmp_path / "themis")
    loaded = ThemisRewardModel.from_pretrained(tmp_path / "themis")
    assert loaded.reward(text) == pytest.approx(model.eval().reward(text), abs=1e-5)
    with pytest.raises(FileNotFoundError, match="value_head"):
        ThemisRewardModel.from_pretrained(tmp_path)


def test_themis_reward_runs_the_tool_loop(model, tmp_path):
    assert REWARDS.get("tools.themis") is ThemisReward
    reward = ThemisReward(model=model, tools=["Calculator", "Calendar"], max_new_tokens=12)
    samples = [
        Sample(prompt="What is 2 + 3?", completion="5"),
        Sample(prompt=[{"role": "user", "content": "What is 2 + 2?"}], completion="5"),
    ]
    outs = reward(samples)
    assert all(math.isfinite(o.score) and o.info["tool_calls"] <= 3 for o in outs)
    assert question_of(samples[1]) == "What is 2 + 2?"
    with pytest.raises(ValueError, match="exactly one"):
        ThemisReward()
    with pytest.raises(ValueError, match="max_calls"):
        ThemisReward(model=model, max_calls=4)


# -- one tokenisation for training, scoring and generation (byte-level BPE) -----------------


@pytest.fixture(scope="module")
def bpe_model():
    """A tiny LM with a byte-level BPE tokenizer trained in code (GPT-2 style: the space
    before a word belongs to the word's token, so " 42" is one token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    corpus = [
        f"### USER:\nQuestion: what is {a} + {b}?\nAnswer: {a + b}\n"
        for a in range(40)
        for b in range(0, 40, 7)
    ] + ["Thought: check\nAction: Calculator\nWork: ok"] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    from transformers import AutoModelForCausalLM

    from rewardkit.tiny import tiny_config

    config = tiny_config(len(tok), num_layers=1, hidden_size=32, num_heads=2)
    config.pad_token_id, config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    lm.generation_config.pad_token_id = tok.pad_token_id
    return ThemisRewardModel(lm, tok)


def test_byte_level_bpe_merges_across_segments(bpe_model):
    """The premise: tokenising "...Answer: " and "42" apart gives other ids than the whole."""
    tok = bpe_model.tokenizer
    prefix = "### USER:\nQuestion: what is 40 + 2?\nAnswer: "
    apart = tok(prefix, add_special_tokens=False)["input_ids"] + tok("42")["input_ids"]
    whole = tok(prefix + "42", add_special_tokens=False)["input_ids"]
    assert apart != whole and len(apart) > len(whole)


def test_training_scoring_and_generation_see_the_same_ids(bpe_model, monkeypatch):
    from rewardkit_tools.themis.loop import HFGenerate
    from rewardkit_tools.themis.trace import render

    def tokenize(tok, text):  # BOS + the whole text's ids
        return [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]

    tok = bpe_model.tokenizer
    trace = Trace([ToolStep("add", "Calculator", "40+2", "forty-two")], "ok")
    ids, weights = encode(tok, "what is 40 + 2?", "42", trace, chosen=True)
    text = render("what is 40 + 2?", "42", trace, tok.eos_token)
    assert ids == tokenize(tok, text) and ids[0] == tok.bos_token_id  # one tokenisation
    assert len(weights) == len(ids)
    # the answer is one token " 42" that starts in the prompt's space: an answer target
    answer_ids = [
        i for i, w in zip(ids, weights, strict=True) if w == 1.0 and tok.decode([i]).strip() == "42"
    ]
    assert len(answer_ids) == 1
    _, rejected = encode(tok, "what is 40 + 2?", "42", trace, chosen=False)
    assert sum(weights) - sum(rejected) == 1.0  # only that one answer token differs
    # scoring: the model reads exactly `ids`
    seen = {}
    forward = bpe_model.forward

    def spy(input_ids, attention_mask):
        seen["score"] = input_ids[0].tolist()
        return forward(input_ids, attention_mask)

    monkeypatch.setattr(bpe_model, "forward", spy)
    bpe_model.reward(text)
    assert seen["score"] == ids
    # generation: the context of a prefix is its `tokenize`, BOS first as in training
    generate = HFGenerate(bpe_model.lm, tok, max_new_tokens=2)
    original = bpe_model.lm.generate

    def spy_generate(input_ids, **kwargs):
        seen["generate"] = input_ids[0].tolist()
        return original(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(bpe_model.lm, "generate", spy_generate)
    prefix = text[: text.index("<start_tool>")]
    generate(prefix)
    assert seen["generate"] == tokenize(tok, prefix)
    assert seen["generate"] == ids[: len(seen["generate"])]  # a prefix of the training ids
