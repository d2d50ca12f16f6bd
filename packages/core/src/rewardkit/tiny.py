"""Tiny models built in code: a character-level tokenizer and a small random causal LM.

Nothing here downloads anything. Tests, the demo and the benchmarks use these to get a real
`transformers` model and tokenizer that go through the normal `save_pretrained` /
`from_pretrained` path, at a size that runs in milliseconds on a CPU.

- `build_tokenizer`: a character-level tokenizer made with the `tokenizers` library (a
  WordLevel model over an alphabet, one token per character, special tokens <pad> <bos> <eos>
  <unk>), wrapped as `transformers.PreTrainedTokenizerFast`, with a simple chat template.
- `tiny_config`: a `LlamaConfig` (or `Qwen2Config`) of the given size.
- `build_tiny_model`: a randomly initialised causal LM (sdpa attention), deterministic given
  the seed; with `path`, saved and loaded back through `AutoModelForCausalLM` /
  `AutoTokenizer`.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3

# printable ASCII (digits, letters, punctuation, space) plus newline; no tab/CR/VT/FF
DEFAULT_ALPHABET = string.digits + string.ascii_letters + string.punctuation + " \n"

# One line per message ("role: content"), an <eos> after each assistant message so the model
# learns to stop, and "assistant: " as the generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}" + EOS + "{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

ARCHS = {"llama": LlamaConfig, "qwen2": Qwen2Config}


def build_tokenizer(alphabet: str | None = None) -> PreTrainedTokenizerFast:
    """Character-level tokenizer: ids 0-3 are <pad> <bos> <eos> <unk>, then one id per character
    of `alphabet` in order. Characters outside the alphabet map to <unk>; decoding joins the
    characters back without spaces."""
    alphabet = DEFAULT_ALPHABET if alphabet is None else alphabet
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet must be a non-empty string, got {alphabet!r}")
    seen: set[str] = set()
    duplicates = sorted({c for c in alphabet if c in seen or seen.add(c)})
    if duplicates:
        raise ValueError(f"alphabet has duplicate characters: {duplicates!r}")

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for char in alphabet:
        vocab[char] = len(vocab)

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # every single character (newline included) is its own pre-token, hence its own token
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # join tokens with no separator

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_config(
    vocab_size: int,
    num_layers: int = 2,
    hidden_size: int = 64,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    arch: str = "llama",
) -> PretrainedConfig:
    """A small decoder config: `LlamaConfig` for arch="llama", `Qwen2Config` for arch="qwen2".
    `intermediate_size` defaults to 4 * hidden_size."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    for name, value in [
        ("vocab_size", vocab_size),
        ("num_layers", num_layers),
        ("hidden_size", hidden_size),
        ("num_heads", num_heads),
        ("max_position_embeddings", max_position_embeddings),
    ]:
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if hidden_size % num_heads != 0:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})"
        )
    if intermediate_size is None:
        intermediate_size = 4 * hidden_size
    if not isinstance(intermediate_size, int) or intermediate_size <= 0:
        raise ValueError(f"intermediate_size must be a positive int, got {intermediate_size!r}")
    return ARCHS[arch](
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
    )


def build_tiny_model(
    path: str | Path | None = None, *, seed: int = 0, alphabet: str | None = None, **config_kwargs
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """A randomly initialised causal LM (float32, sdpa attention) and its character tokenizer.

    The weights depend only on `seed` and the config (the global RNG state is left as it was).
    With `path`, both are written with `save_pretrained` and the returned pair is what
    `AutoModelForCausalLM.from_pretrained(path)` / `AutoTokenizer.from_pretrained(path)` give
    back, so callers exercise the normal loading path. The model is returned in eval mode.
    `config_kwargs` go to `tiny_config` (vocab_size comes from the tokenizer).
    """
    if "vocab_size" in config_kwargs:
        raise ValueError("vocab_size is set from the tokenizer; pass alphabet= instead")
    tokenizer = build_tokenizer(alphabet)
    config = tiny_config(len(tokenizer), **config_kwargs)
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            config, attn_implementation="sdpa", dtype=torch.float32
        )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    if path is not None:
        path = Path(path)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(
            path, attn_implementation="sdpa", dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer
