"""Tests for rewardkit.tiny: the character tokenizer and the tiny random causal LM."""

import string

import pytest
import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from rewardkit.tiny import (
    DEFAULT_ALPHABET,
    build_tiny_model,
    build_tokenizer,
    tiny_config,
)

SMALL = dict(num_layers=1, hidden_size=16, num_heads=2)


# ---------------------------------------------------------------- tokenizer


def test_default_alphabet_is_printable_ascii_plus_newline():
    assert set(DEFAULT_ALPHABET) == set(string.printable) - set("\t\r\x0b\x0c")
    assert len(DEFAULT_ALPHABET) == 95 + 1  # 95 printable characters (space included) + "\n"


def test_ids_by_hand():
    tok = build_tokenizer()
    # ids 0-3 are <pad> <bos> <eos> <unk>; then digits (4..13), a-z (14..39), A-Z (40..65),
    # punctuation (66..97), " " = 98, "\n" = 99
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == 100
    # "a1 Z\n": a = 14, 1 = 4 + 1 = 5, " " = 98, Z = 40 + 25 = 65, "\n" = 99
    assert tok("a1 Z\n", add_special_tokens=True).input_ids == [14, 5, 98, 65, 99]
    # an unknown character is <unk>; a special token written in the text is one token
    assert tok("é<eos>0").input_ids == [3, 2, 4]


def test_decode_round_trips_text_in_the_alphabet():
    tok = build_tokenizer()
    text = "12 + 30 = 42\nDone: [ok] {x}~"
    ids = tok(text).input_ids
    assert len(ids) == len(text)  # one token per character
    assert tok.decode(ids) == text
    assert tok.decode(ids + [tok.eos_token_id], skip_special_tokens=True) == text


def test_custom_alphabet_and_bad_alphabets():
    tok = build_tokenizer("ab")
    assert len(tok) == 6
    assert tok("abc").input_ids == [4, 5, 3]
    with pytest.raises(ValueError, match="duplicate"):
        build_tokenizer("aba")
    with pytest.raises(ValueError, match="non-empty"):
        build_tokenizer("")


def test_chat_template():
    tok = build_tokenizer()
    messages = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == "user: 1+1?\nassistant: 2<eos>\n"
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "user: 1+1?\nassistant: "


def test_save_and_autotokenizer_round_trip(tmp_path):
    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, PreTrainedTokenizerFast)
    text = DEFAULT_ALPHABET + "<pad><bos><eos><unk>é\t"
    assert loaded(text).input_ids == tok(text).input_ids
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.decode(tok(DEFAULT_ALPHABET).input_ids) == DEFAULT_ALPHABET
    assert (loaded.pad_token, loaded.bos_token, loaded.eos_token, loaded.unk_token) == (
        "<pad>",
        "<bos>",
        "<eos>",
        "<unk>",
    )
    messages = [{"role": "user", "content": "hi"}]
    assert loaded.apply_chat_template(messages, tokenize=False) == "user: hi\n"


# ---------------------------------------------------------------- config


def test_tiny_config_fields():
    config = tiny_config(100, num_layers=3, hidden_size=32, num_heads=4)
    assert isinstance(config, LlamaConfig)
    assert (config.vocab_size, config.num_hidden_layers, config.hidden_size) == (100, 3, 32)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 4)
    assert config.intermediate_size == 4 * 32
    assert config.max_position_embeddings == 512
    qwen = tiny_config(50, arch="qwen2", intermediate_size=40)
    assert isinstance(qwen, Qwen2Config)
    assert qwen.intermediate_size == 40


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocab_size=10, arch="gpt2"), "arch"),
        (dict(vocab_size=10, hidden_size=30, num_heads=4), "divisible"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(vocab_size=10, num_layers=0), "num_layers"),
        (dict(vocab_size=10, intermediate_size=-1), "intermediate_size"),
    ],
)
def test_tiny_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**kwargs)


# ---------------------------------------------------------------- model


def _weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_model_is_deterministic_given_seed_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    first, tok = build_tiny_model(seed=3, **SMALL)
    assert torch.equal(torch.random.get_rng_state(), state)
    second, _ = build_tiny_model(seed=3, **SMALL)
    other, _ = build_tiny_model(seed=4, **SMALL)
    assert _weights_equal(first, second)
    assert not _weights_equal(first, other)
    assert isinstance(first, LlamaForCausalLM)
    assert first.config._attn_implementation == "sdpa"
    assert first.config.vocab_size == len(tok)
    assert first.config.eos_token_id == tok.eos_token_id
    assert not first.training


def test_model_save_and_load_through_auto_classes(tmp_path):
    in_memory, _ = build_tiny_model(seed=1, **SMALL)
    model, tok = build_tiny_model(tmp_path, seed=1, **SMALL)
    assert (tmp_path / "config.json").exists() and (tmp_path / "tokenizer.json").exists()
    assert model.config._attn_implementation == "sdpa"
    assert model.dtype == torch.float32
    assert _weights_equal(model, in_memory)
    ids = torch.tensor([tok("2+2=").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, in_memory(ids).logits, rtol=0, atol=0)
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 1 and ids.shape[1] < out.shape[1] <= ids.shape[1] + 3
    assert torch.equal(out[:, : ids.shape[1]], ids)


def test_qwen2_model():
    model, _ = build_tiny_model(arch="qwen2", **SMALL)
    assert isinstance(model, Qwen2ForCausalLM)


def test_model_rejects_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_model(vocab_size=7)
